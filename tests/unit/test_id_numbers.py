"""Mainland resident ID numbers: checked by their GB 11643 (ISO 7064 MOD 11-2) character."""

from __future__ import annotations

import pytest

from services.domain.errors import MalformedError
from services.domain.id_numbers import check_character, normalize_id_number

# Published examples whose check characters are known.
VALID = ["11010519491231002X", "440524188001010014", "110101199003077897"]


@pytest.mark.parametrize("number", VALID)
def test_a_published_number_passes_its_check(number: str) -> None:
    assert check_character(number[:17]) == number[17]
    assert normalize_id_number(number) == number


def test_a_lower_case_x_spaces_and_look_alike_digits_give_the_same_number() -> None:
    assert normalize_id_number("11010519491231002x") == "11010519491231002X"
    assert normalize_id_number("110105 19491231 002X") == "11010519491231002X"
    assert normalize_id_number("１１０１０５１９４９１２３１００２Ｘ") == "11010519491231002X"


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("110105194912310021", "bad_id_check_digit"),  # last character mistyped
        ("110105194912310024", "bad_id_check_digit"),
        ("11010519491231002Y", "bad_id_number"),
        ("1101051949123100", "bad_id_number"),  # 16 characters
        ("110105194913310020", "bad_id_birth_date"),  # month 13
        ("", "bad_id_number"),
    ],
)
def test_a_wrong_number_is_refused_with_its_reason(number: str, code: str) -> None:
    with pytest.raises(MalformedError) as refused:
        normalize_id_number(number)
    assert refused.value.code == code


def test_every_single_digit_typo_is_caught() -> None:
    number = VALID[0]
    for position in range(17):
        for digit in "0123456789":
            typo = number[:position] + digit + number[position + 1 :]
            if typo != number:
                assert check_character(typo[:17]) != number[17], typo
