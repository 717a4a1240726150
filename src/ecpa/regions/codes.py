"""Rules of the division codes: GB/T 2260 (six digits, county and up) and the
12-digit statistical division codes (township and village)."""

from __future__ import annotations

import re

from .models import Level

_SIX = re.compile(r"^\d{6}$")
_TWELVE = re.compile(r"^\d{12}$")


def level_of_code(code: str) -> Level | None:
    """The level a code's shape implies, or None if the shape is wrong.

    County-level divisions directly under a province (e.g. 济源市 419001) still look
    like counties; their parent is the province.
    """
    if _SIX.match(code):
        if code == "000000" or code[:2] == "00":
            return None
        if code[2:] == "0000":
            return Level.PROVINCE
        if code[4:] == "00":
            return Level.PREFECTURE
        return Level.COUNTY
    if _TWELVE.match(code):
        if code[6:9] == "000":
            return None
        if code[9:] == "000":
            return Level.TOWNSHIP
        return Level.VILLAGE
    return None


def scope_prefix(code: str) -> str:
    """The code prefix shared by a region and everything under it.

    ``620000`` -> ``62``; ``621200`` -> ``6212``; ``621221`` -> ``621221``;
    township ``621221100000`` -> ``621221100``; a village is its whole code.
    """
    level = level_of_code(code)
    if level is Level.PROVINCE:
        return code[:2]
    if level is Level.PREFECTURE:
        return code[:4]
    if level is Level.COUNTY:
        return code
    if level is Level.TOWNSHIP:
        return code[:9]
    return code


def fits_parent(code: str, parent_code: str) -> bool:
    """Whether a code lies under its stated parent (its digits start with the parent's)."""
    return code != parent_code and code.startswith(scope_prefix(parent_code))
