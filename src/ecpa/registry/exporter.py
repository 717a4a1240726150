"""Export of the registry: the register file format (CSV/XLSX, one row per member, the
columns of the import, so that an export imports again) and the de-identified Parquet
layout of ``layout.py``."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput, PermissionDenied
from ..people.access import Actor, audit, require_role
from ..people.models import Role
from ..privacy import protector
from ..regions.codes import scope_prefix
from .columns import COLUMNS, CONDITION_FIELDS, INCOME_KEYS
from .layout import CONDITIONS, HOUSEHOLDS, INCOMES, MEMBERS
from .models import Household, Income, LivingConditions, Member, StatusEvent

EXPORTERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.ANALYST)
_BATCH = 2000


def _households(session: Session, actor: Actor, region_code: str | None):
    # Duplicates (issue 6): a household merged into another is not exported twice.
    stmt = select(Household).where(Household.merged_into_id.is_(None)).order_by(Household.number)
    for code in (region_code, actor.region_code):
        if code:
            stmt = stmt.where(Household.village_code.startswith(scope_prefix(code)))
    return session.scalars(stmt.execution_options(yield_per=_BATCH))


def _latest(session: Session, ids: list[int]) -> dict[int, StatusEvent]:
    out = {}
    for e in session.scalars(select(StatusEvent).where(StatusEvent.household_id.in_(ids))
                             .order_by(StatusEvent.event_date, StatusEvent.id)):
        out[e.household_id] = e
    return out


def _batches(session, actor, region_code) -> Iterator[list[Household]]:
    batch: list[Household] = []
    for h in _households(session, actor, region_code):
        batch.append(h)
        if len(batch) == _BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _text(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, date):
        return v.isoformat()
    return v.value if hasattr(v, "value") else str(v)


def _yuan(fen: int | None) -> str:
    if fen is None:
        return ""
    return f"{fen // 100}.{fen % 100:02d}"


def register_rows(session: Session, actor: Actor, region_code: str | None = None,
                  reveal: bool = False, year: int | None = None) -> Iterator[list[str]]:
    """Rows in the import format.  ID and phone numbers are masked unless ``reveal``
    (which only roles that see full personal data may ask for, and which then round-trips
    through import)."""
    p = protector() if reveal else None
    keys = [c.key for c in COLUMNS]
    for batch in _batches(session, actor, region_code):
        ids = [h.id for h in batch]
        members: dict[int, list[Member]] = {}
        for m in session.scalars(select(Member).where(Member.household_id.in_(ids)).order_by(Member.id)):
            members.setdefault(m.household_id, []).append(m)
        incomes: dict[int, dict] = {}
        for inc in session.scalars(select(Income).where(Income.household_id.in_(ids))):
            incomes.setdefault(inc.household_id, {}).setdefault(inc.year, {})[inc.source] = inc.amount_fen
        conds: dict[int, dict] = {}
        for c in session.scalars(select(LivingConditions).where(LivingConditions.household_id.in_(ids))):
            conds.setdefault(c.household_id, {})[c.year] = c
        latest = _latest(session, ids)
        for h in batch:
            years = sorted(set(incomes.get(h.id, {})) | set(conds.get(h.id, {})))
            yr = year if year is not None else (years[-1] if years else None)
            ev = latest.get(h.id)
            hh = {
                "household_number": h.number, "village_code": h.village_code,
                "address": h.address,
                "household_phone": (p.decrypt(h.phone_enc, "phone") if p else h.phone_masked)
                if h.phone_enc else None,
                "main_cause": h.main_cause, "monitoring_category": h.monitoring_category,
                "risk_eliminated": h.risk_eliminated,
                "status": ev.status if ev else None,
                "status_date": ev.event_date if ev else None,
                "status_reason": ev.reason if ev else None,
                "year": yr,
            }
            inc = incomes.get(h.id, {}).get(yr, {})
            for key, source in INCOME_KEYS.items():
                hh[key] = _yuan(inc.get(source)) if source in inc else None
            c = conds.get(h.id, {}).get(yr)
            for key, attr in CONDITION_FIELDS.items():
                value = getattr(c, attr) if c else None
                hh[key] = _yuan(value) if attr.endswith("_fen") and value is not None else value
            for i, m in enumerate(members.get(h.id, [])):
                mem = {
                    "name": m.name,
                    "id_number": p.decrypt(m.id_number_enc, "id_number") if p else m.id_number_masked,
                    "relation": m.relation, "sex": m.sex, "birth_date": m.birth_date,
                    "phone": (p.decrypt(m.phone_enc, "phone") if p else m.phone_masked)
                    if m.phone_enc else None,
                    "education": m.education, "schooling": m.schooling, "health": m.health,
                    "disability": m.disability, "labour_ability": m.labour_ability,
                    "medical_insurance": m.medical_insurance,
                    "monthly_wage": _yuan(m.monthly_wage_fen),
                }
                row = {**(hh if i == 0 else {}), **mem}
                row["household_number"] = h.number
                yield [_text(row.get(k)) for k in keys]


def export_registry(session: Session, actor: Actor, out: str | Path, fmt: str | None = None,
                    region_code: str | None = None, reveal: bool = False) -> dict:
    """Write the registry (within the actor's scope) to ``out``; returns counts."""
    require_role(actor, *EXPORTERS)
    out = Path(out)
    fmt = (fmt or out.suffix.lstrip(".") or "csv").lower()
    if reveal and not actor.sees_full_personal_data:
        raise PermissionDenied(f"role {actor.role.value} may not export full ID numbers")
    if fmt in ("csv", "xlsx") and actor.role is Role.ANALYST:
        raise InvalidInput("analysts export the de-identified Parquet layout (--format parquet)")
    if fmt == "csv":
        n = _write_csv(out, register_rows(session, actor, region_code, reveal))
    elif fmt == "xlsx":
        n = _write_xlsx(out, register_rows(session, actor, region_code, reveal))
    elif fmt == "parquet":
        n = export_parquet(session, actor, out, region_code)
    else:
        raise InvalidInput(f"unknown export format {fmt!r}: use csv, xlsx or parquet")
    audit(session, actor, "export", "household", None,
          {"format": fmt, "rows": n, "reveal": reveal, "region": region_code})
    return {"format": fmt, "rows": n, "path": str(out)}


def _write_csv(out: Path, rows) -> int:
    n = 0
    with out.open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([c.key for c in COLUMNS])
        for row in rows:
            w.writerow(row)
            n += 1
    return n


def _write_xlsx(out: Path, rows) -> int:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("register")
    ws.append([c.key for c in COLUMNS])
    n = 0
    for row in rows:
        ws.append(row)  # all text: ID numbers keep their digits
        n += 1
    wb.save(out)
    return n


def export_parquet(session: Session, actor: Actor, out_dir: Path, region_code: str | None) -> int:
    """The four de-identified tables of ``layout.py`` into directory ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    writers = {name: pq.ParquetWriter(out_dir / f"{name}.parquet", schema)
               for name, schema in (("households", HOUSEHOLDS), ("members", MEMBERS),
                                    ("incomes", INCOMES), ("conditions", CONDITIONS))}
    n = 0
    try:
        for batch in _batches(session, actor, region_code):
            ids = [h.id for h in batch]
            latest = _latest(session, ids)
            mem = session.scalars(select(Member).where(Member.household_id.in_(ids))).all()
            size: dict[int, int] = {}
            for m in mem:
                size[m.household_id] = size.get(m.household_id, 0) + 1
            hh_rows = [{
                "household_id": h.id, "household_number": h.number,
                "province_code": h.village_code[:2] + "0000", "county_code": h.village_code[:6],
                "township_code": h.village_code[:9] + "000", "village_code": h.village_code,
                "status": _val(latest[h.id].status) if h.id in latest else None,
                "status_date": latest[h.id].event_date if h.id in latest else None,
                "monitoring_category": _val(h.monitoring_category),
                "risk_eliminated": h.risk_eliminated, "main_cause": _val(h.main_cause),
                "size": size.get(h.id, 0),
            } for h in batch]
            writers["households"].write_table(pa.Table.from_pylist(hh_rows, HOUSEHOLDS))
            writers["members"].write_table(pa.Table.from_pylist([{
                "member_id": m.id, "household_id": m.household_id, "relation": _val(m.relation),
                "sex": _val(m.sex), "birth_date": m.birth_date, "education": _val(m.education),
                "schooling": _val(m.schooling), "health": _val(m.health),
                "disability": _val(m.disability), "labour_ability": _val(m.labour_ability),
                "medical_insurance": m.medical_insurance, "monthly_wage_fen": m.monthly_wage_fen,
            } for m in mem], MEMBERS))
            writers["incomes"].write_table(pa.Table.from_pylist([{
                "household_id": i.household_id, "year": i.year, "source": _val(i.source),
                "amount_fen": i.amount_fen,
            } for i in session.scalars(select(Income).where(Income.household_id.in_(ids)))], INCOMES))
            writers["conditions"].write_table(pa.Table.from_pylist([{
                "household_id": c.household_id, "year": c.year,
                **{attr: _val(getattr(c, attr)) if attr in ("cooking_fuel", "toilet")
                   else getattr(c, attr) for attr in CONDITION_FIELDS.values()},
            } for c in session.scalars(select(LivingConditions)
                                       .where(LivingConditions.household_id.in_(ids)))], CONDITIONS))
            n += len(batch)
    finally:
        for w in writers.values():
            w.close()
    return n


def _val(x):
    return None if x is None else x.value
