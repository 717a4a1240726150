"""Poverty lines: a table of named lines, each a value per year in yuan per person per
year with its source.  ECPA ships China's national rural line (and its current-price
values), the monitoring line and the World Bank's international lines; users add their
own from a CSV file of the same columns.  A line's value for a year is the value of the
latest year at or before it (a line is carried forward until it is revised)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from ..errors import InvalidInput

SHIPPED = Path(__file__).with_name("lines.csv")
COLUMNS = ("name", "year", "amount_yuan", "source")


@dataclass(frozen=True)
class LineValue:
    name: str
    year: int
    amount_yuan: Decimal
    source: str

    @property
    def amount_fen(self) -> int:
        return int(self.amount_yuan * 100)


class PovertyLines:
    def __init__(self, values: list[LineValue]) -> None:
        self.values = sorted(values, key=lambda v: (v.name, v.year))

    @classmethod
    def load(cls, *extra: Path) -> "PovertyLines":
        values = read_lines(SHIPPED)
        for path in extra:
            added = read_lines(path)
            replaced = {(v.name, v.year) for v in added}
            values = [v for v in values if (v.name, v.year) not in replaced] + added
        return cls(values)

    @property
    def names(self) -> list[str]:
        return sorted({v.name for v in self.values})

    def value(self, name: str, year: int) -> LineValue:
        """The line ``name`` in force in ``year``."""
        candidates = [v for v in self.values if v.name == name]
        if not candidates:
            raise InvalidInput(f"unknown poverty line {name!r}; known: {', '.join(self.names)}",
                               field="line", value=name)
        before = [v for v in candidates if v.year <= year]
        if not before:
            raise InvalidInput(f"poverty line {name!r} has no value for {year} or earlier "
                               f"(first year {candidates[0].year})", field="line", value=name)
        return before[-1]


def read_lines(path: Path) -> list[LineValue]:
    """Read a lines CSV; every bad row is named (row, column, value)."""
    out: list[LineValue] = []
    errors: list[str] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}; "
                               f"expected {', '.join(COLUMNS)}", file=str(path))
        for n, row in enumerate(reader, start=2):
            name = (row["name"] or "").strip()
            if not name or not name.replace("_", "").isalnum():
                errors.append(f"row {n}, column name: {name!r} is not a name (letters, digits, _)")
                continue
            try:
                year = int(row["year"])
                if not 1900 <= year <= 2100:
                    raise ValueError
            except (TypeError, ValueError):
                errors.append(f"row {n}, column year: {row['year']!r} is not a year")
                continue
            try:
                amount = Decimal((row["amount_yuan"] or "").strip())
                if amount <= 0 or amount != amount.quantize(Decimal("0.01")):
                    raise InvalidOperation
            except InvalidOperation:
                errors.append(f"row {n}, column amount_yuan: {row['amount_yuan']!r} is not a "
                              "positive amount in yuan (at most 2 decimals)")
                continue
            out.append(LineValue(name, year, amount, (row["source"] or "").strip()))
    if errors:
        raise InvalidInput(f"{path}: " + "; ".join(errors), file=str(path), errors=errors)
    return out
