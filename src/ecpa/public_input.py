"""What the public types into ECPA's forms (grievances, questions to the experts): text
with a length limit, a contact phone, and reference numbers a person can read out over
the phone and type back in any case."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from .errors import InvalidInput

# No 0/O, 1/I/L: a reference read out over the phone is not misheard.  31^8 ≈ 8.5e11
# codes a year: guessing a live one is hopeless even without a rate limit.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"


def text(value: str | None, field: str, limit: int, required: bool = False) -> str:
    value = (value or "").strip()
    if required and not value:
        raise InvalidInput(f"{field} is required", field=field)
    if len(value) > limit:
        raise InvalidInput(f"{field} has {len(value)} characters, at most {limit} allowed",
                           field=field)
    return value


def phone(value: str | None, field: str = "contact_phone") -> str | None:
    value = (value or "").strip().replace(" ", "").replace("-", "")
    if not value:
        return None
    digits = value.removeprefix("+")
    if not digits.isdigit() or not 5 <= len(digits) <= 15:
        raise InvalidInput(f"{field} must be 5 to 15 digits", field=field)
    return value


def new_reference(prefix: str, now: datetime, taken: Callable[[str], bool]) -> str:
    """``P-YYYY-XXXX-XXXX``, drawn until ``taken`` says it is free."""
    while True:
        body = "".join(secrets.choice(ALPHABET) for _ in range(8))
        ref = f"{prefix}-{now.year}-{body[:4]}-{body[4:]}"
        if not taken(ref):
            return ref


def normalise_reference(prefix: str, value: str) -> str:
    """What a person types: any case, spaces, dashes missing."""
    raw = "".join(ch for ch in value.upper() if ch.isalnum())
    if len(raw) != 13 or raw[0] != prefix or not raw[1:5].isdigit():
        return value.strip().upper()
    return f"{prefix}-{raw[1:5]}-{raw[5:9]}-{raw[9:]}"
