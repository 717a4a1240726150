"""Checks of identity numbers: the resident ID number (GB 11643, ISO 7064 MOD 11-2
check digit) and the unified social credit code (GB 32100), via python-stdnum."""

from __future__ import annotations

from datetime import date

from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError

from .models import Sex

# Province-level prefixes of GB/T 2260 (and 71/81/82 for Taiwan, Hong Kong, Macao).
PROVINCE_PREFIXES = {
    "11", "12", "13", "14", "15", "21", "22", "23", "31", "32", "33", "34", "35", "36", "37",
    "41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54", "61", "62", "63", "64",
    "65", "71", "81", "82",
}


def check_resident_id(value: str, today: date | None = None) -> tuple[str, date, Sex]:
    """Return ``(number, birth_date, sex)`` or raise ``ValueError`` saying what is wrong."""
    number = value.strip().upper()
    if len(number) != 18 or not number.isalnum():
        # Only then the library's (slow, thorough) clean-up of spaces and separators.
        number = ric.compact(value).upper()
    # Not ric.validate(): it also requires the region code to have existed in the birth
    # year, which refuses real numbers of people born before their county's code was
    # assigned (a number keeps the code of where it was first issued).
    if len(number) != 18:
        raise ValueError(f"must have 18 characters, has {len(number)}")
    if not number[:17].isdigit() or not (number[17].isdigit() or number[17] == "X"):
        raise ValueError("must be 17 digits and a check character (digit or X)")
    if number[:2] not in PROVINCE_PREFIXES:
        raise ValueError(f"{number[:2]} is not a province code")
    if number[-1] != ric.calc_check_digit(number):
        raise ValueError(f"check digit is wrong (expected {ric.calc_check_digit(number)})")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError(f"impossible birth date {number[6:14]}") from None
    if born > (today or date.today()) or born.year < 1900:
        raise ValueError(f"impossible birth date {born.isoformat()}")
    # The 17th digit is odd for men, even for women.
    sex = Sex.MALE if int(number[16]) % 2 else Sex.FEMALE
    return number, born, sex


def check_credit_code(value: str) -> str:
    """Return the normalised unified social credit code or raise ``ValueError``."""
    try:
        return uscc.validate(value)
    except InvalidLength:
        raise ValueError("must have 18 characters") from None
    except InvalidChecksum:
        raise ValueError("check character is wrong") from None
    except ValidationError as exc:
        raise ValueError(f"not a unified social credit code ({exc})") from None
