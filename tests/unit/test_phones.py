"""Phone numbers: one E.164 per phone, whatever digits spell it; anything else refused."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.errors import MalformedError
from services.domain.phones import normalize_phone

PHONE = "+8613800138000"
# Every Unicode decimal digit, grouped by the ASCII digit it stands for (fullwidth,
# Arabic-Indic, Devanagari, Bengali, mathematical bold, ...).
LOOKALIKES = {
    d: [chr(c) for c in range(0x110000) if unicodedata.decimal(chr(c), None) == d]
    for d in range(10)
}


@pytest.mark.parametrize(
    "raw", ["13800138000", "+86 138 0013 8000", "+86-138-0013-8000", "(+86)13800138000",
            "008613800138000"]
)  # fmt: skip
def test_mainland_numbers_are_normalised_to_e164(raw: str) -> None:
    assert normalize_phone(raw) == PHONE


@pytest.mark.parametrize(
    "raw",
    [
        "+86１3800138000",  # a fullwidth 1
        "＋８６１３８００１３８０００",  # all fullwidth, with a fullwidth plus
        "+86١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic
        "+86۱۳۸۰۰۱۳۸۰۰۰",  # Extended Arabic-Indic (Persian)
        "१३८००१३८०००",  # Devanagari, no country code
        "+86\u3000138\u30000013\u30008000",  # ideographic spaces
    ],
)
def test_look_alike_digits_fold_to_the_ascii_number(raw: str) -> None:
    assert normalize_phone(raw) == PHONE


@pytest.mark.parametrize(
    "raw",
    [
        "12345",
        "phone",
        "+0123456789",
        "",
        "1-800-FLOWERS",  # the library would read letters as a vanity number
        "+86\u200b13800138000",  # a zero-width space between look-alike spellings
        "+86 138 0013 8000 ext 5",
        "+86 13800138000 #",
        "+86 10000000000",  # not a number in the mainland plan
    ],
)
def test_anything_but_a_valid_number_is_refused_as_bad_phone(raw: str) -> None:
    with pytest.raises(MalformedError) as refused:
        normalize_phone(raw)
    assert refused.value.code == "bad_phone"


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=13, max_size=13))
def test_any_mix_of_look_alike_digits_is_the_same_voter_or_refused(picks: list[int]) -> None:
    """Invariant: a spelling of +8613800138000 never yields another E.164."""
    spelled = "+" + "".join(
        LOOKALIKES[int(d)][pick % len(LOOKALIKES[int(d)])]
        for d, pick in zip(PHONE[1:], picks, strict=True)
    )
    try:
        normalized = normalize_phone(spelled)
    except MalformedError as refused:
        assert refused.code == "bad_phone"
    else:
        assert normalized == PHONE
        assert normalized.isascii()


@given(st.text(max_size=20))
def test_whatever_comes_in_what_comes_out_is_ascii_e164_or_a_refusal(raw: str) -> None:
    try:
        normalized = normalize_phone(raw)
    except MalformedError as refused:
        assert refused.code == "bad_phone"
    else:
        assert normalized.isascii() and normalized.startswith("+")
        assert normalized[1:].isdigit() and normalize_phone(normalized) == normalized
