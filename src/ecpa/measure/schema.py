"""What measurement reads: the Parquet layout of the registry (``registry/layout.py``)
plus the optional columns some measures need, and the checks that name a missing or
malformed column before anything runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InvalidInput

# kind -> SQL type of a typed NULL standing in for an absent optional column
SQL_TYPES = {"int": "BIGINT", "str": "VARCHAR", "bool": "BOOLEAN", "date": "DATE",
             "float": "DOUBLE"}


@dataclass(frozen=True)
class Col:
    name: str
    kind: str  # int, str, bool, date, float
    required: bool = False


def _cols(*spec: tuple) -> dict[str, Col]:
    return {c[0]: Col(*c) for c in spec}


TABLES: dict[str, dict[str, Col]] = {
    "households": _cols(
        ("household_id", "int", True), ("province_code", "str"), ("county_code", "str"),
        ("township_code", "str"), ("village_code", "str"), ("status", "str"),
        ("monitoring_category", "str"), ("risk_eliminated", "bool"), ("main_cause", "str"),
        ("size", "int"), ("child_deaths", "int")),
    "members": _cols(
        ("household_id", "int", True), ("relation", "str", True), ("sex", "str", True),
        ("birth_date", "date", True), ("education", "str"), ("schooling", "str"),
        ("health", "str"), ("disability", "str"), ("labour_ability", "str"),
        ("medical_insurance", "bool"), ("monthly_wage_fen", "int"), ("undernourished", "bool")),
    "incomes": _cols(
        ("household_id", "int", True), ("year", "int", True), ("source", "str", True),
        ("amount_fen", "int", True)),
    "conditions": _cols(
        ("household_id", "int", True), ("year", "int", True), ("housing_safe", "bool"),
        ("drinking_water_safe", "bool"), ("cooking_fuel", "str"), ("toilet", "str"),
        ("electricity", "bool"), ("road_access", "bool"), ("internet_access", "bool"),
        ("food_secure", "bool"), ("clothing_secure", "bool"), ("medical_expense_fen", "int"),
        ("disaster_loss_fen", "int"), ("assets_owned", "int"), ("cooperative_member", "bool"),
        ("indoor_kitchen", "bool"), ("tap_water", "bool")),
    # County-level data for UNDP's index; optional as a whole.
    "counties": _cols(
        ("county_code", "str", True), ("sanitary_toilet_rate", "float"),
        ("indoor_kitchen_rate", "float"), ("tap_water_rate", "float"),
        ("mobile_internet_coverage", "float"), ("production_facility_coverage", "float"),
        ("road_coverage", "float"), ("financial_facility_coverage", "float"),
        ("night_light_density", "float")),
}
OPTIONAL_TABLES = {"counties"}


def _kind_of(t: pa.DataType) -> str | None:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "str"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_date(t) or pa.types.is_timestamp(t):
        return "date"
    return None


def _fits(expected: str, found: str | None) -> bool:
    return found == expected or (expected == "float" and found == "int")


@dataclass
class InputTable:
    name: str
    path: Path
    present: dict[str, str]   # layout column -> column in the file
    extra: list[str]          # other columns of the file (survey design columns …)

    def has(self, column: str) -> bool:
        return column in self.present

    def select_list(self) -> str:
        """The SELECT list that presents the file in the layout: mapped names, and typed
        NULLs for absent optional columns."""
        items = []
        for col in TABLES[self.name].values():
            if col.name in self.present:
                src = self.present[col.name]
                expr = f'"{src}"'
                if col.kind == "date":
                    expr = f"CAST({expr} AS DATE)"
                elif col.kind == "float":
                    expr = f"CAST({expr} AS DOUBLE)"
                items.append(f"{expr} AS {col.name}")
            else:
                items.append(f"CAST(NULL AS {SQL_TYPES[col.kind]}) AS {col.name}")
        items += [f'"{c}"' for c in self.extra]
        return ", ".join(items)


def parquet_path(folder: Path, name: str) -> Path | None:
    for candidate in (folder / f"{name}.parquet", folder / name):
        if candidate.exists():
            return candidate
    return None


def inspect_inputs(folder: Path, mapping: dict[str, dict[str, str]] | None = None,
                   required: dict[str, set[str]] | None = None,
                   extra: dict[str, set[str]] | None = None) -> dict[str, InputTable]:
    """Check the input folder against the layout.  ``required`` adds, per table, the
    optional columns the configuration needs; ``extra`` names further columns to keep
    (survey design).  Every problem is collected and reported at once."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput(f"input {folder} is not a folder of Parquet files", field="input")
    mapping = mapping or {}
    required = required or {}
    extra = extra or {}
    problems: list[str] = []
    out: dict[str, InputTable] = {}
    for name, cols in TABLES.items():
        path = parquet_path(folder, name)
        if path is None:
            if name not in OPTIONAL_TABLES:
                problems.append(f"{name}.parquet is missing from {folder}")
            continue
        try:
            schema = pq.read_schema(path) if path.is_file() else pq.ParquetDataset(path).schema
        except (pa.ArrowInvalid, OSError) as exc:
            problems.append(f"{name}.parquet cannot be read as Parquet: {exc}")
            continue
        rename = mapping.get(name, {})
        unknown = sorted(set(rename) - set(cols))
        if unknown:
            problems.append(f"mapping.{name}: {', '.join(unknown)} not in the layout; "
                            f"layout columns: {', '.join(cols)}")
        present: dict[str, str] = {}
        for col in cols.values():
            src = rename.get(col.name, col.name)
            if src not in schema.names:
                if col.required or col.name in required.get(name, set()):
                    why = "required" if col.required else "needed by the configuration"
                    shown = f"{src} (mapped from {col.name})" if src != col.name else src
                    problems.append(f"{name}.parquet: column {shown} is missing ({why})")
                continue
            found = _kind_of(schema.field(src).type)
            if not _fits(col.kind, found):
                problems.append(f"{name}.parquet: column {src} has type "
                                f"{schema.field(src).type}, expected {col.kind}")
                continue
            present[col.name] = src
        keep = []
        for c in sorted(extra.get(name, set())):
            if c not in schema.names:
                problems.append(f"{name}.parquet: column {c} is missing (survey design)")
            else:
                keep.append(c)
        out[name] = InputTable(name, path, present, keep)
    if problems:
        raise InvalidInput("input does not fit the layout: " + "; ".join(problems),
                           field="input", errors=problems)
    return out
