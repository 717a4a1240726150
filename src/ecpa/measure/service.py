"""Measurement from the live database, for a county officer: the region's register is
exported to the de-identified Parquet layout in a temporary folder (with the officer's
scope checks and audit), assessed by the same engine as the national runs, and the
households flagged by dynamic monitoring are written back as proposals for review."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.codes import scope_prefix
from ..registry.exporter import export_parquet
from .assess import Result, assess
from .config import Config, load_config
from ..registry.models import MonitoringCategory
from .models import MonitoringProposal, ProposalState

READERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)


def _records(df: pd.DataFrame) -> list[dict]:
    return df.astype(object).where(df.notna(), None).to_dict(orient="records")


def assess_region(session: Session, actor: Actor, region_code: str, year: int,
                  config: Config | None = None) -> tuple[Result, pd.DataFrame]:
    """Assess the households of a region (a county or below) from the database.
    Returns the result and the at-risk households with their household numbers."""
    require_role(actor, *READERS)
    require_region(actor, region_code)
    config = config or load_config(None, year=year)
    with tempfile.TemporaryDirectory(prefix="ecpa-assess-") as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        n = export_parquet(session, actor, src, region_code)
        if n == 0:
            raise InvalidInput(f"no households registered in region {region_code}",
                               field="region", value=region_code)
        result = assess(src, config, out)
        numbers = pd.read_parquet(src / "households.parquet",
                                  columns=["household_id", "household_number"])
        at_risk = pd.read_parquet(out / "monitoring.parquet").merge(numbers, on="household_id")
        assessed = pd.read_parquet(out / "households.parquet",
                                   columns=["household_id", "status", "assessed_status"])
        result.exit_candidates = assessed[
            assessed["status"].isin(["identified", "returned"])
            & (assessed["assessed_status"] == "not_poor")].merge(numbers, on="household_id")
    audit(session, actor, "assess", "region", None, {"region": region_code, "year": year,
                                                      "households": n})
    return result, at_risk


def summary(result: Result, at_risk: pd.DataFrame, region_code: str, year: int) -> dict:
    """The JSON answer of the API: totals, every level below, and the at-risk list."""
    mpi, fgt, g = result.mpi, result.fgt, result.guarantees
    plain = mpi["subgroup"].isna()
    keep_mpi = ["level", "code", "k", "households", "population", "H", "A", "M0", "drivers"]
    ind = [c for c in mpi.columns if c.startswith("contribution_")]
    return {
        "region": region_code, "year": year, "households": result.households,
        "mpi": _records(mpi.loc[plain, keep_mpi + ind]),
        "mpi_by_subgroup": _records(mpi.loc[~plain & (mpi["level"] == "total"),
                                            ["subgroup", "subgroup_value"] + keep_mpi[2:]]),
        "income_poverty": _records(fgt.loc[fgt["subgroup"].isna(),
                                           ["level", "code", "line", "line_yuan", "population",
                                            "headcount_ratio", "poverty_gap",
                                            "squared_poverty_gap"]]),
        "guarantees": _records(g.loc[g["subgroup"].isna()]),
        "at_risk": _records(at_risk[["household_number", "village_code", "status",
                                     "risk_category", "risk_reasons", "fails",
                                     "income_pc_fen"]]),
    }


def propose_monitoring(session: Session, actor: Actor, at_risk: pd.DataFrame, year: int) -> int:
    """Write the flagged households as open proposals; a household already proposed for
    the same year and category is left as it is (re-running adds nothing)."""
    require_role(actor, *READERS)
    existing = set(session.execute(
        select(MonitoringProposal.household_id, MonitoringProposal.category)
        .where(MonitoringProposal.year == year)).all())
    added = 0
    for row in at_risk.itertuples(index=False):
        category = MonitoringCategory(row.risk_category)
        if (int(row.household_id), category) in existing:
            continue
        income = None if pd.isna(row.income_pc_fen) else int(round(row.income_pc_fen))
        session.add(MonitoringProposal(
            household_id=int(row.household_id), year=year, category=category,
            reasons=row.risk_reasons or "", per_capita_income_fen=income,
            state=ProposalState.OPEN, proposed_by=actor.username))
        added += 1
    session.flush()
    audit(session, actor, "propose_monitoring", "region", None, {"year": year, "added": added})
    return added


def list_proposals(session: Session, actor: Actor, region_code: str, year: int | None = None) -> list[dict]:
    from ..registry.models import Household
    require_role(actor, *READERS)
    require_region(actor, region_code)
    q = (select(MonitoringProposal, Household.number, Household.village_code)
         .join(Household, Household.id == MonitoringProposal.household_id)
         .where(Household.village_code.startswith(scope_prefix(region_code))))
    if year is not None:
        q = q.where(MonitoringProposal.year == year)
    return [{"id": p.id, "household_number": number, "village_code": village, "year": p.year,
             "category": p.category.value, "reasons": p.reasons,
             "per_capita_income_fen": p.per_capita_income_fen, "state": p.state.value}
            for p, number, village in session.execute(q.order_by(MonitoringProposal.id))]
