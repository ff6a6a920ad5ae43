"""Phone numbers -> ASCII E.164, the canonical identity of a phone on every channel.

The rule for look-alike characters is FOLD, in this one place: every Unicode decimal digit
(fullwidth `１`, Arabic-Indic `١`, Devanagari `१`, ...) counts as the ASCII digit it stands
for, and fullwidth `＋`, brackets and spaces count as their ASCII forms (NFKC). Folding, not
refusing, because Chinese input methods type fullwidth digits in earnest: a real voter must
get in, and a stuffer's `+86１3800138000` must land on the same voter (same send limits,
same ballot limit) as `+8613800138000`. Anything else (letters, which the library would read
as a vanity number; zero-width or other invisible characters; extensions) is refused as
`bad_phone`, so two spellings can never yield two voters.

Numbers without a `+` are read in the default region CN: mainland numbers are written
`13800138000`, and `0086...`/`+86...` mean the same. The library (phonenumbers, Google's
libphonenumber data) then checks the number against its country's numbering plan.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

from services.domain.errors import MalformedError

DEFAULT_REGION = "CN"
_WRITTEN = re.compile(r"^[^+]*\+?[^+]*$")  # one "+" at most, ...
_CHARACTERS = re.compile(r"^[0-9 ()+.-]+$")  # ... among what may remain once folded


class BadPhoneError(MalformedError):
    code = "bad_phone"


def fold_lookalikes(text: str) -> str:
    """NFKC (fullwidth forms, ideographic space) and every decimal digit to ASCII."""
    folded = unicodedata.normalize("NFKC", text)
    return "".join(_ascii_digit(ch) for ch in folded)


def _ascii_digit(ch: str) -> str:
    value = unicodedata.decimal(ch, None)
    return str(value) if value is not None else ch


def normalize_phone(phone: str) -> str:
    """ASCII E.164 (`+8613800138000`), or BadPhoneError naming what is wrong."""
    written = fold_lookalikes(phone).strip()
    if not (_CHARACTERS.match(written) and _WRITTEN.match(written)):
        raise BadPhoneError("a phone number has only digits, spaces, '-', '(', ')' and '+'")
    try:
        number = phonenumbers.parse(written, DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise BadPhoneError(f"not a phone number: {exc}") from exc
    if number.extension or not phonenumbers.is_valid_number(number):
        raise BadPhoneError("not a valid phone number (e.g. 13800138000 or +8613800138000)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
