"""Money as people read it: integer fen shown in yuan with thousands separators."""

from __future__ import annotations


def yuan(fen: int) -> str:
    """``123456`` → ``"1,234.56"``; exact, no float."""
    sign, (y, f) = "-" if fen < 0 else "", divmod(abs(int(fen)), 100)
    return f"{sign}{y:,}.{f:02d}"
