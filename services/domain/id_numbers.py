"""Mainland resident ID numbers (GB 11643-1999): 18 characters, checked before use.

6 digits of area, 8 of birth date (YYYYMMDD), 3 of sequence, and a check character by
ISO 7064 MOD 11-2 over the first 17 (`X` stands for 10). Look-alike digits fold to ASCII as
they do for phones (services/domain/phones.py), and `x` is `X`, so one card is one spelling.
"""

from __future__ import annotations

import re
from datetime import date

from services.domain.errors import MalformedError
from services.domain.phones import fold_lookalikes

SHAPE = re.compile(r"^[0-9]{17}[0-9X]$")  # once folded, separators gone, upper case
_SEPARATORS = re.compile(r"[\s-]")
# weight of position i (0-based, from the left) is 2**(17 - i) mod 11
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK_CHARS = "10X98765432"  # indexed by (weighted sum mod 11)


class BadIdNumberError(MalformedError):
    code = "bad_id_number"


def check_character(first17: str) -> str:
    """The GB 11643 / ISO 7064 MOD 11-2 check character of 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


def normalize_id_number(raw: str) -> str:
    """The 18-character number in upper case, or BadIdNumberError with the reason."""
    text = _SEPARATORS.sub("", fold_lookalikes(raw)).upper()
    if not SHAPE.match(text):
        raise BadIdNumberError("a resident ID number is 17 digits and a digit or X")
    _check_birth_date(text[6:14])
    if check_character(text[:17]) != text[17]:
        raise BadIdNumberError(
            "the ID number's check character does not match (mistyped?)",
            code="bad_id_check_digit",
        )
    return text


def _check_birth_date(digits: str) -> None:
    try:
        date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
    except ValueError as exc:
        raise BadIdNumberError(
            "the ID number's birth date is not a date", code="bad_id_birth_date"
        ) from exc
