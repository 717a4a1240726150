"""The test household of the rule library and its patches (``bad`` / ``good`` in
rules.toml): the rows of one household in the Parquet layout, clean for every rule until
a patch breaks one.  Used by the tests and by the benchmark's planted errors."""

from __future__ import annotations

import copy
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..registry.layout import CONDITIONS, HOUSEHOLDS, INCOMES, MEMBERS

YEAR = 2024
AS_OF = date(2024, 12, 31)
VILLAGE = "621221100001"

# Exited in 2019: four persons, every guarantee met, incomes above the line in 2019,
# 2023 and 2024; a head with a chronic illness (the main cause).
BASE_HOUSEHOLD = {"province_code": "620000", "county_code": "621221",
                  "township_code": "621221100000", "village_code": VILLAGE, "status": "exited",
                  "status_date": date(2019, 11, 20), "monitoring_category": None,
                  "risk_eliminated": None, "main_cause": "illness"}
_PERSON = {"education": "primary", "schooling": "not_student", "health": "healthy",
           "disability": "none", "labour_ability": "ordinary", "medical_insurance": True,
           "monthly_wage_fen": None}
BASE_MEMBERS = [
    {**_PERSON, "relation": "head", "sex": "male", "birth_date": date(1975, 3, 1),
     "education": "junior_secondary", "health": "chronic_illness"},
    {**_PERSON, "relation": "spouse", "sex": "female", "birth_date": date(1977, 5, 1)},
    {**_PERSON, "relation": "child", "sex": "male", "birth_date": date(2014, 6, 1),
     "schooling": "primary", "labour_ability": "none"},
    {**_PERSON, "relation": "child", "sex": "female", "birth_date": date(2000, 1, 1),
     "education": "senior_secondary", "monthly_wage_fen": 300_000},
]
NEW_MEMBER = {**_PERSON, "relation": "other", "sex": "female", "birth_date": date(1950, 1, 1),
              "labour_ability": "weak"}
BASE_INCOMES = {(2024, "wages"): 4_800_000, (2024, "farming_business"): 1_000_000,
                (2023, "wages"): 4_500_000, (2023, "farming_business"): 900_000,
                (2019, "wages"): 2_000_000}
BASE_CONDITIONS = {"housing_safe": True, "drinking_water_safe": True,
                   "cooking_fuel": "electric_gas", "toilet": "sanitary", "electricity": True,
                   "road_access": True, "internet_access": True, "food_secure": True,
                   "clothing_secure": True, "medical_expense_fen": 200_000,
                   "disaster_loss_fen": 0, "assets_owned": 3, "cooperative_member": False,
                   "indoor_kitchen": True, "tap_water": True}


def _v(value):
    return None if value == "" else value  # TOML has no null: "" stands for it


def household_rows(hid: int, patch: dict | None = None, village: str | None = None) -> dict[str, list[dict]]:
    """The layout rows of test household ``hid`` with ``patch`` applied."""
    patch = patch or {}
    hh = {"household_id": hid, "household_number": f"T{hid:012d}", **BASE_HOUSEHOLD}
    # A patch of the village code itself keeps its own county (a relocated one would not).
    if village and "village_code" not in patch.get("household", {}):
        hh.update(village_code=village, county_code=village[:6],
                  township_code=village[:9] + "000", province_code=village[:2] + "0000")
    members = copy.deepcopy(BASE_MEMBERS)
    dropped = set()
    for change in patch.get("members", []):
        change = dict(change)
        if "index" in change:
            i = change.pop("index")
            if change.pop("drop", False):
                dropped.add(i)
            members[i].update({k: _v(v) for k, v in change.items()})
        else:
            members.append({**NEW_MEMBER, **{k: _v(v) for k, v in change.items()}})
    members = [m for i, m in enumerate(members) if i not in dropped]
    members = [{"member_id": hid * 100 + i, "household_id": hid, **m} for i, m in enumerate(members)]
    incomes = dict(BASE_INCOMES)
    for row in patch.get("incomes", []):
        incomes[(row["year"], row["source"])] = row["amount_fen"]
    conds = {y: {"household_id": hid, "year": y, **BASE_CONDITIONS} for y in (YEAR - 1, YEAR)}
    conds[YEAR].update({k: _v(v) for k, v in patch.get("conditions", {}).items()})
    hh.update({k: _v(v) for k, v in patch.get("household", {}).items()})
    hh.setdefault("size", None)
    if hh["size"] is None:
        hh["size"] = len(members)
    out = {"households": [hh], "members": members,
           "incomes": [{"household_id": hid, "year": y, "source": s, "amount_fen": a}
                       for (y, s), a in sorted(incomes.items())],
           "conditions": list(conds.values())}
    for table in patch.get("drop", []):
        out[table] = []
    return out


def write_layout(folder: Path, households: list[dict[str, list[dict]]]) -> Path:
    """The rows of several households as the four files of the layout."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, schema in (("households", HOUSEHOLDS), ("members", MEMBERS),
                         ("incomes", INCOMES), ("conditions", CONDITIONS)):
        rows = [r for h in households for r in h[name]]
        pq.write_table(pa.Table.from_pylist(rows, schema), folder / f"{name}.parquet")
    return folder
