"""Data quality: every rule of the library fires on a household that breaks it and not on
a clean one (nor on its near miss); the library is checked; the command line writes the
worklists; an officer's run through the API fills the villages' worklists, a cadre sees
only its own, and a rerun after the fix marks the item resolved (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
from datetime import date

import pyarrow.parquet as pq
import pytest
from conftest import COUNTY, PW, VILLAGE_A, VILLAGE_B, login
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from ecpa.errors import InvalidInput
from ecpa.quality.engine import Rule, check_rule, load_rules, run_rules, write_worklists
from ecpa.quality.examples import AS_OF, YEAR, household_rows, write_layout

RULES = load_rules()
TODAY = date(2025, 6, 1)
CLEAN = 1  # the household without any patch


def _ids(i: int) -> tuple[int, int]:
    """Household ids of rule i's breaking and near-miss households."""
    return 10 + 2 * i, 11 + 2 * i


@pytest.fixture(scope="module")
def findings(tmp_path_factory) -> dict[str, set[int]]:
    """One layout with the clean household and, per rule, one that breaks it and one
    near miss (its `good` patch, or the clean household again); every rule run once."""
    folder = tmp_path_factory.mktemp("quality")
    households = [household_rows(CLEAN)]
    for i, rule in enumerate(RULES):
        bad, good = _ids(i)
        households += [household_rows(bad, rule.bad), household_rows(good, rule.good)]
    write_layout(folder / "in", households)
    run = run_rules(folder / "in", folder / "out", year=YEAR, as_of=AS_OF, today=TODAY)
    assert run.households == 1 + 2 * len(RULES)
    out: dict[str, set[int]] = {}
    for row in pq.read_table(run.findings_path, columns=["code", "household_id"]).to_pylist():
        out.setdefault(row["code"], set()).add(row["household_id"])
    return out


def test_the_library():
    assert len(RULES) >= 40
    assert len({r.code for r in RULES}) == len(RULES)
    assert {r.severity for r in RULES} == {"error", "warning"}
    for r in RULES:
        assert r.message_zh and r.message_en and r.field and r.bad, r.code
    # The areas counties checked: members, education, health, labour, income, living
    # conditions, status, monitoring, exit.
    assert {r.code[2:5] for r in RULES} >= {"MEM", "EDU", "HEA", "LAB", "INC", "CON", "STA",
                                            "MON", "EXT"}


def test_the_clean_household_breaks_no_rule(findings):
    fired = sorted(code for code, hids in findings.items() if CLEAN in hids)
    assert fired == []


@pytest.mark.parametrize("i", range(len(RULES)), ids=[r.code for r in RULES])
def test_rule_fires_on_the_breaking_record_only(findings, i):
    rule = RULES[i]
    bad, good = _ids(i)
    hits = findings.get(rule.code, set())
    assert bad in hits, f"{rule.code} did not fire on the record that breaks it"
    assert good not in hits, f"{rule.code} fired on a record that does not break it"
    assert CLEAN not in hits
    # Only its own breaking household (other rules' patches may break it too, but a rule
    # that fires on everything would show here).
    assert len(hits) < len(RULES), f"{rule.code} fires on almost every household"


def test_member_rules_name_the_member(tmp_path):
    rule = next(r for r in RULES if r.code == "Q-MEM-001")
    write_layout(tmp_path / "in", [household_rows(7, rule.bad)])
    run = run_rules(tmp_path / "in", tmp_path / "out", year=YEAR, as_of=AS_OF, today=TODAY)
    rows = [r for r in pq.read_table(run.findings_path).to_pylist() if r["code"] == "Q-MEM-001"]
    assert len(rows) == 1
    assert rows[0]["member_id"] == 701 and rows[0]["member_relation"] == "spouse"
    assert rows[0]["value"] == "1905-05-01" and rows[0]["severity"] == "error"
    assert rows[0]["household_number"] == "T000000000007"


@pytest.mark.parametrize("sql, message", [
    ("DROP TABLE households", "SELECT"),
    ("SELECT household_id, 1 AS value FROM secrets", "unknown table"),
    ("SELECT household_id FROM households", "must return"),
    ("SELECT household_id, 1 AS value FROM (", "cannot read"),
])
def test_a_bad_rule_is_refused_with_its_code(sql, message):
    rule = Rule(code="Q-TST-001", severity="error", field="x", message_zh="测试",
                message_en="test", sql=sql)
    with pytest.raises(InvalidInput, match=message) as exc:
        check_rule(rule)
    assert "Q-TST-001" in exc.value.message


def test_missing_columns_are_named(tmp_path):
    write_layout(tmp_path / "in", [household_rows(1)])
    (tmp_path / "in" / "members.parquet").unlink()
    with pytest.raises(InvalidInput, match="members.parquet is missing"):
        run_rules(tmp_path / "in", tmp_path / "out")


def test_region_filter_and_worklists(tmp_path):
    other = "621221100002"
    rules = {r.code: r for r in RULES}
    write_layout(tmp_path / "in", [
        household_rows(1, rules["Q-EXT-001"].bad), household_rows(2, rules["Q-MEM-001"].bad),
        household_rows(3, rules["Q-EXT-001"].bad, village=other), household_rows(4)])
    run = run_rules(tmp_path / "in", tmp_path / "out", year=YEAR, region="621221100001",
                    as_of=AS_OF, today=TODAY)
    assert run.households == 3
    assert {c["rule"]: c["count"] for c in run.counts if c["count"]} == {"Q-EXT-001": 1, "Q-MEM-001": 1}
    lists = write_worklists(run.findings_path, tmp_path / "out")
    assert lists == {"villages": 1, "workbooks": 1}
    with open(tmp_path / "out" / "villages" / "621221" / "621221100001.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["户编号 household"], r["规则 rule"]) for r in rows] == \
        [("T000000000001", "Q-EXT-001"), ("T000000000002", "Q-MEM-001")]
    assert rows[1]["成员关系 member"] == "spouse" and rows[1]["问题"] == "成员年龄超过110岁"
    from openpyxl import load_workbook
    wb = load_workbook(tmp_path / "out" / "worklist_621221.xlsx", read_only=True)
    assert wb.sheetnames == ["621221100001"]


def test_cli_on_a_layout(tmp_path):
    from ecpa.cli import app
    rules = {r.code: r for r in RULES}
    write_layout(tmp_path / "in", [household_rows(1, rules["Q-STA-002"].bad), household_rows(2)])
    res = CliRunner().invoke(app, ["quality", str(tmp_path / "in"), str(tmp_path / "out"),
                                   "--year", "2024"])
    assert res.exit_code == 0, res.output
    assert "Q-STA-002" in res.output and "2 households, 1 findings" in res.output
    assert (tmp_path / "out" / "villages" / "621221" / "621221100001.csv").exists()
    assert (tmp_path / "out" / "summary.csv").exists()
    res = CliRunner().invoke(app, ["quality", str(tmp_path / "in")])
    assert res.exit_code == 2


# ---------------------------------------------------------------- live database


@pytest.fixture
def api(db_url, register_file):
    from ecpa.api.app import create_app
    from ecpa.db import session_scope
    from ecpa.people.access import system_actor
    from ecpa.people.models import Role
    from ecpa.people.service import create_user
    from ecpa.registry.importer import import_register
    with session_scope(db_url) as s:
        actor = system_actor("test")
        assert not import_register(s, actor, register_file).errors
        create_user(s, actor, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, actor, "cadre_a", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, actor, "cadre_b", PW, Role.VILLAGE_CADRE, VILLAGE_B)
        create_user(s, actor, "other", PW, Role.COUNTY_OFFICER, "621222")
    return TestClient(create_app())


def test_officer_run_cadre_worklist_and_rerun_after_fix(api, db_url):
    from sqlalchemy import func, select

    from ecpa.db import session_scope
    from ecpa.people.access import Actor
    from ecpa.people.models import AuditEntry, Role
    from ecpa.quality.models import QualityIssue
    from ecpa.registry.models import Household, MonitoringCategory
    from ecpa.registry.service import update_household

    officer = login(api, "officer")
    r = api.post("/api/quality/runs", json={"region": COUNTY, "year": 2024}, headers=officer)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["households"] == 3 and body["opened"] == body["findings"] > 0
    by_rule = {c["rule"]: c["count"] for c in body["by_rule"]}
    # 6212210003 (village B) is monitored with no category and no risk state.
    assert by_rule["Q-MON-001"] == 1 and by_rule["Q-MON-004"] == 1

    cadre_b = login(api, "cadre_b")
    r = api.get("/api/quality/worklist", params={"village": VILLAGE_B}, headers=cadre_b)
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    mon = [i for i in items if i["rule"] == "Q-MON-001"]
    assert mon and mon[0]["household_number"] == "6212210003"
    assert mon[0]["message_zh"] == "监测户未填写监测对象类别" and mon[0]["state"] == "open"
    assert all(i["household_number"] == "6212210003" for i in items)

    # A cadre sees only its own village; a cadre cannot run; an officer only its county.
    r = api.get("/api/quality/worklist", params={"village": VILLAGE_B}, headers=login(api, "cadre_a"))
    assert r.status_code == 403
    r = api.post("/api/quality/runs", json={"region": COUNTY}, headers=cadre_b)
    assert r.status_code == 403
    r = api.post("/api/quality/runs", json={"region": COUNTY}, headers=login(api, "other"))
    assert r.status_code == 403 and "outside your scope" in r.json()["message"]
    assert api.get("/api/quality/worklist", params={"village": COUNTY},
                   headers=officer).status_code == 422

    # The same run again changes nothing.
    r = api.post("/api/quality/runs", json={"region": COUNTY, "year": 2024}, headers=officer)
    assert r.json()["opened"] == 0 and r.json()["resolved"] == 0

    # The cadre fixes the record; the next run drops the fixed item.
    with session_scope(db_url) as s:
        hid = s.scalar(select(Household.id).where(Household.number == "6212210003"))
        update_household(s, Actor("cadre_b", Role.VILLAGE_CADRE, VILLAGE_B), hid,
                         {"monitoring_category": MonitoringCategory.MARGINAL,
                          "risk_eliminated": False})
    r = api.post("/api/quality/runs", json={"region": COUNTY, "year": 2024}, headers=officer)
    assert r.json()["resolved"] == 2 and r.json()["opened"] == 0
    rules = {i["rule"] for i in api.get("/api/quality/worklist", params={"village": VILLAGE_B},
                                         headers=cadre_b).json()["items"]}
    assert "Q-MON-001" not in rules and "Q-MON-004" not in rules
    done = api.get("/api/quality/worklist", params={"village": VILLAGE_B, "state": "resolved"},
                   headers=cadre_b).json()["items"]
    assert {i["rule"] for i in done} == {"Q-MON-001", "Q-MON-004"}
    assert all(i["resolved_at"] for i in done)
    with session_scope(db_url) as s:
        assert s.scalar(select(func.count()).select_from(AuditEntry)
                        .where(AuditEntry.action == "quality_run")) == 3
        assert s.scalar(select(func.count()).select_from(QualityIssue)) == body["findings"]


def test_cli_over_the_database(api, tmp_path):
    from ecpa.cli import app
    res = CliRunner().invoke(app, ["quality", "--db", "--region", COUNTY, str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "Q-MON-001" in res.output and "3 households" in res.output
    assert (tmp_path / "out" / "villages" / COUNTY / f"{VILLAGE_B}.csv").exists()
    res = CliRunner().invoke(app, ["quality", "--db"])
    assert res.exit_code == 2
