"""Checks of identity numbers: the resident ID number (GB 11643, ISO 7064 MOD 11-2
check digit) and the unified social credit code (GB 32100), via python-stdnum."""

from __future__ import annotations

from datetime import date

from stdnum.cn import ric, uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
    ValidationError,
)

from .models import Sex


def check_resident_id(value: str, today: date | None = None) -> tuple[str, date, Sex]:
    """Return ``(number, birth_date, sex)`` or raise ``ValueError`` saying what is wrong."""
    number = ric.compact(value).upper()
    try:
        ric.validate(number)
    except InvalidLength:
        raise ValueError(f"must have 18 characters, has {len(number)}") from None
    except InvalidFormat:
        raise ValueError("the first 17 characters must be digits") from None
    except InvalidChecksum:
        raise ValueError(
            f"check digit is wrong (expected {ric.calc_check_digit(number)})"
        ) from None
    except InvalidComponent:
        # Either the birth date or the region part is impossible.
        try:
            ric.get_birth_date(number)
        except ValidationError:
            raise ValueError(f"impossible birth date {number[6:14]}") from None
        raise ValueError(f"unknown region code {number[:6]}") from None
    born = ric.get_birth_date(number)
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
