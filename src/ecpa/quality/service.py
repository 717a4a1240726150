"""Data quality over the live database, for a county officer: the region's register is
exported to the de-identified Parquet layout in a temporary folder (the exporter's scope
checks and audit), every rule runs over it, and the findings become worklist items of
each village.  A rerun closes the items it no longer finds (the cadre fixed them) and
reopens those found again."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import InvalidInput
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..regions.codes import level_of_code, scope_prefix
from ..regions.models import Level
from ..registry.exporter import export_parquet
from ..registry.models import Household
from .engine import Run, load_rules, run_rules, write_worklists
from .models import IssueState, QualityIssue, QualityRun

RUNNERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
WORKLIST_READERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.VILLAGE_CADRE)


def _key(code: str, household_id: int, member_id: int | None) -> str:
    return f"{code}/{household_id}/{member_id or 0}"


def run_region(session: Session, actor: Actor, region_code: str, year: int | None = None,
               out_dir: Path | None = None, xlsx: bool = True) -> tuple[QualityRun, Run]:
    """Run every rule over a region (a county or below) of the live database and update
    its villages' worklists; with ``out_dir`` also write the files of ``ecpa quality``."""
    require_role(actor, *RUNNERS)
    if level_of_code(region_code) in (None, Level.PROVINCE, Level.PREFECTURE):
        raise InvalidInput("a quality run is for a county, township or village",
                           field="region", value=region_code)
    require_region(actor, region_code)
    with tempfile.TemporaryDirectory(prefix="ecpa-quality-") as tmp:
        src, out = Path(tmp) / "in", Path(out_dir) if out_dir else Path(tmp) / "out"
        n = export_parquet(session, actor, src, region_code)
        if n == 0:
            raise InvalidInput(f"no households registered in region {region_code}",
                               field="region", value=region_code)
        # A snapshot of today: ages and the 6-month window count to today.
        run = run_rules(src, out, year=year, as_of=date.today())
        findings = pq.read_table(run.findings_path, columns=[
            "household_id", "member_id", "village_code", "code", "severity", "field", "value"]
        ).to_pylist()
        if out_dir:
            write_worklists(run.findings_path, out, xlsx=xlsx)
    record = QualityRun(region_code=region_code, year=run.year, run_by=actor.username,
                        households=run.households, findings=len(findings))
    session.add(record)
    session.flush()
    record.opened, record.resolved = _sync(session, record, region_code, findings)
    audit(session, actor, "quality_run", "region", region_code,
          {"run": record.id, "year": run.year, "households": n, "findings": len(findings),
           "opened": record.opened, "resolved": record.resolved})
    return record, run


def _sync(session: Session, record: QualityRun, region_code: str, findings: list[dict]) -> tuple[int, int]:
    existing = {i.issue_key: i for i in session.scalars(
        select(QualityIssue).where(QualityIssue.village_code.startswith(scope_prefix(region_code))))}
    now = utcnow()
    opened = 0
    seen = set()
    for f in findings:
        key = _key(f["code"], f["household_id"], f["member_id"])
        seen.add(key)
        issue = existing.get(key)
        if issue is None:
            session.add(QualityIssue(
                issue_key=key, household_id=f["household_id"], member_id=f["member_id"],
                village_code=f["village_code"], rule_code=f["code"], severity=f["severity"],
                field=f["field"], value=f["value"], state=IssueState.OPEN,
                first_run_id=record.id, last_run_id=record.id, found_at=now))
            opened += 1
            continue
        if issue.state is IssueState.RESOLVED:
            opened += 1
        issue.state, issue.resolved_at = IssueState.OPEN, None
        issue.value, issue.last_run_id, issue.village_code = f["value"], record.id, f["village_code"]
    resolved = 0
    for key, issue in existing.items():
        if key not in seen and issue.state is IssueState.OPEN:
            issue.state, issue.resolved_at, issue.last_run_id = IssueState.RESOLVED, now, record.id
            resolved += 1
    session.flush()
    return opened, resolved


def worklist(session: Session, actor: Actor, village_code: str, state: str = "open") -> dict:
    """A village's worklist: the items of the latest runs, errors first, with the rule's
    message in both languages.  A cadre sees only its own village."""
    require_role(actor, *WORKLIST_READERS)
    if level_of_code(village_code) is not Level.VILLAGE:
        raise InvalidInput(f"{village_code} is not a village code", field="village",
                           value=village_code)
    require_region(actor, village_code)
    if state not in ("open", "resolved", "all"):
        raise InvalidInput("state is open, resolved or all", field="state", value=state)
    rules = {r.code: r for r in load_rules()}
    q = (select(QualityIssue, Household.number)
         .join(Household, Household.id == QualityIssue.household_id)
         .where(QualityIssue.village_code == village_code))
    if state != "all":
        q = q.where(QualityIssue.state == IssueState(state))
    rows = session.execute(q.order_by(QualityIssue.severity, Household.number,
                                      QualityIssue.rule_code, QualityIssue.id)).all()
    audit(session, actor, "read", "quality_worklist", village_code, {"items": len(rows)})
    items = []
    for issue, number in rows:
        rule = rules.get(issue.rule_code)
        items.append({
            "id": issue.id, "household_id": issue.household_id, "household_number": number,
            "member_id": issue.member_id, "rule": issue.rule_code, "severity": issue.severity,
            "field": issue.field, "value": issue.value, "state": issue.state.value,
            "message_zh": rule.message_zh if rule else "", "message_en": rule.message_en if rule else "",
            "found_at": issue.found_at.isoformat(),
            "resolved_at": issue.resolved_at.isoformat() if issue.resolved_at else None,
        })
    return {"village": village_code, "state": state, "count": len(items), "items": items}


def run_view(record: QualityRun, run: Run) -> dict:
    return {"id": record.id, "region": record.region_code, "year": record.year,
            "households": record.households, "findings": record.findings,
            "opened": record.opened, "resolved": record.resolved,
            "by_rule": [c for c in run.counts if c["count"]]}
