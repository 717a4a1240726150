"""Targeting cases on SQLite and PostgreSQL: an identification and an exit walked through
every step with the right and the wrong users (a wrong role, the same user twice, a
skipped step, an objection during the notice), the status history changing only at the
end; the public notice (page and PDF); monitoring; proposals from the assessment."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import COUNTY, PW, TOWNSHIP, VILLAGE_A, VILLAGE_B, login, make_id
from ecpa.cases import service as cases
from ecpa.cases.models import CaseState
from ecpa.cases.notice import notice_board, notice_pdf
from ecpa.db import session_scope
from ecpa.errors import Conflict, InvalidInput, PermissionDenied
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Relation, Status, StatusEvent
from ecpa.registry.service import MemberInput, create_household, current_status

ADMIN = system_actor("test")
CADRE_1 = Actor("cadre1", Role.VILLAGE_CADRE, VILLAGE_A)
CADRE_2 = Actor("cadre2", Role.VILLAGE_CADRE, VILLAGE_A)
CADRE_B = Actor("cadreb", Role.VILLAGE_CADRE, VILLAGE_B)
TOWNSHIP_1 = Actor("town1", Role.COUNTY_OFFICER, TOWNSHIP)
TOWNSHIP_2 = Actor("town2", Role.COUNTY_OFFICER, TOWNSHIP)
COUNTY_1 = Actor("county1", Role.COUNTY_OFFICER, COUNTY)


@pytest.fixture
def village(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        ids = s.scalars(select(Household.id).order_by(Household.number)).all()
        applicant = create_household(s, ADMIN, "6212210009", VILLAGE_A, [MemberInput(
            "王小花", make_id(date(1975, 3, 3), 9, False), Relation.HEAD)], address="东关村二组")
        return {"identified": ids[0], "exited": ids[1], "monitored": ids[2], "new": applicant.id}


def _events(s, hid):
    return s.scalar(select(StatusEvent.id).where(StatusEvent.household_id == hid)
                    .order_by(StatusEvent.id.desc()).limit(1))


def test_identification_through_every_step(db_url, village):
    hid, day = village["new"], date(2024, 3, 1)
    with session_scope(db_url) as s:
        with pytest.raises(PermissionDenied):
            cases.open_case(s, CADRE_B, "identification", hid, "x")  # another village
        case = cases.open_case(s, CADRE_1, "identification", hid, "illness, no labour", today=day)
        cid = case.id
        with pytest.raises(Conflict, match="already has an open identification case"):
            cases.open_case(s, CADRE_2, "identification", hid, "again")
        with pytest.raises(Conflict, match="maker-checker"):
            cases.take_step(s, CADRE_1, cid, today=day)  # the same user twice
        with pytest.raises(PermissionDenied, match="is taken by village_cadre, not county_officer"):
            cases.take_step(s, TOWNSHIP_1, cid, today=day)  # the wrong body
        with pytest.raises(Conflict, match="at step 'village_appraisal', not 'township_review'"):
            cases.take_step(s, CADRE_2, cid, expected="township_review", today=day)  # skipping
        cases.take_step(s, CADRE_2, cid, "representatives agreed 23 of 25", today=day)
        cases.take_step(s, CADRE_1, cid, "checked", expected="village_check", today=day)
        assert cases.get_case(s, cid).state is CaseState.IN_NOTICE
        board = notice_board(s, VILLAGE_A, day)
        assert [r["head"] for r in board["cases"]] == ["王*花"]
        assert notice_pdf(board).startswith(b"%PDF")
        with pytest.raises(Conflict, match="notice of case .* runs until 2024-03-08"):
            cases.take_step(s, CADRE_2, cid, today=day + timedelta(days=3))
        # A villager objects during the notice: the case stops.
        objection = cases.object_to(s, cid, "", "they own a shop in town", today=day + timedelta(days=4))
        with pytest.raises(Conflict, match="stopped by an objection"):
            cases.take_step(s, CADRE_2, cid, today=day + timedelta(days=9))
        with pytest.raises(PermissionDenied):
            cases.review_objection(s, CADRE_2, objection.id, False, "x")
        # The township finds the shop is a relative's: dismissed, the notice starts again.
        cases.review_objection(s, TOWNSHIP_1, objection.id, False, "the shop is the brother's",
                               today=day + timedelta(days=6))
        c = cases.get_case(s, cid)
        assert (c.state, c.notice_end) == (CaseState.IN_NOTICE, day + timedelta(days=13))
        assert current_status(s, hid) == (None, None)  # nothing written yet
        cases.take_step(s, CADRE_2, cid, today=day + timedelta(days=14))
        cases.take_step(s, TOWNSHIP_1, cid, "reviewed", today=day + timedelta(days=15))
        with pytest.raises(Conflict, match="maker-checker"):
            cases.take_step(s, TOWNSHIP_1, cid, today=day + timedelta(days=23))
        cases.take_step(s, TOWNSHIP_2, cid, today=day + timedelta(days=23))
        with pytest.raises(PermissionDenied, match="county level"):
            cases.take_step(s, TOWNSHIP_1, cid, today=day + timedelta(days=24))
        assert current_status(s, hid) == (None, None)
        cases.take_step(s, COUNTY_1, cid, "announced", today=day + timedelta(days=24))
        c = cases.get_case(s, cid)
        assert c.state is CaseState.APPROVED
        assert current_status(s, hid) == (Status.IDENTIFIED, day + timedelta(days=24))
        view = cases.case_view(s, c)
        assert [a["by"] for a in view["actions"] if a["action"] == "took"] == [
            "cadre1", "cadre2", "cadre1", "cadre2", "town1", "town2", "county1"]
        assert view["colour"] == "red"


def test_exit_rejected_when_an_objection_is_upheld_then_exit_done(db_url, village):
    hid, day = village["identified"], date(2024, 6, 1)
    with session_scope(db_url) as s:
        cid = cases.open_case(s, CADRE_1, "exit", hid, "income above the line", today=day).id
        cases.take_step(s, CADRE_2, cid, today=day)            # democratic appraisal
        with pytest.raises(PermissionDenied, match="township level"):
            cases.take_step(s, COUNTY_1, cid, today=day)       # a county officer is not the township
        cases.take_step(s, TOWNSHIP_1, cid, today=day)         # verification
        cases.take_step(s, CADRE_1, cid, "signed", today=day)  # household agreement
        o = cases.object_to(s, cid, "张三", "the son is still in hospital", today=day + timedelta(days=1))
        cases.review_objection(s, TOWNSHIP_2, o.id, True, "confirmed: large medical bills")
        assert cases.get_case(s, cid).state is CaseState.REJECTED
        with pytest.raises(Conflict, match="rejected"):
            cases.take_step(s, CADRE_2, cid, today=day + timedelta(days=9))
        assert current_status(s, hid)[0] is Status.IDENTIFIED
        # Half a year later, a new exit case goes through.
        later = date(2024, 12, 1)
        cid = cases.open_case(s, CADRE_1, "exit", hid, "recovered", today=later).id
        for who in (CADRE_2, TOWNSHIP_1, CADRE_1):
            cases.take_step(s, who, cid, today=later)
        cases.take_step(s, CADRE_2, cid, today=later + timedelta(days=8))
        cases.take_step(s, COUNTY_1, cid, today=later + timedelta(days=9))
        assert current_status(s, hid) == (Status.EXITED, later + timedelta(days=9))
        assert cases.case_view(s, cases.get_case(s, cid))["colour"] == "green"


def test_monitoring_data_change_and_bad_cases(db_url, village):
    day = date(2024, 5, 1)
    with session_scope(db_url) as s:
        with pytest.raises(InvalidInput, match="needs a category"):
            cases.open_case(s, CADRE_1, "monitoring_entry", village["exited"], "flood")
        with pytest.raises(Conflict, match="cannot go from identified to monitored"):
            cases.open_case(s, CADRE_1, "monitoring_entry", village["identified"], "x",
                            {"category": "marginal"})
        cid = cases.open_case(s, CADRE_1, "monitoring_entry", village["exited"], "flood damage",
                              {"category": "sudden_hardship"}, today=day).id
        cases.take_step(s, CADRE_2, cid, today=day)
        cases.take_step(s, CADRE_1, cid, today=day + timedelta(days=6))
        cases.take_step(s, TOWNSHIP_1, cid, today=day + timedelta(days=6))
        cases.take_step(s, COUNTY_1, cid, today=day + timedelta(days=7))
        h = s.get(Household, village["exited"])
        assert current_status(s, h.id)[0] is Status.MONITORED
        assert (h.monitoring_category.value, h.risk_eliminated) == ("sudden_hardship", False)
        with pytest.raises(InvalidInput, match="cannot be changed by a case"):
            cases.open_case(s, CADRE_1, "data_change", h.id, "x", {"fields": {"village_code": "1"}})
        cid = cases.open_case(s, CADRE_1, "data_change", h.id, "moved house",
                              {"fields": {"address": "东关村三组"}}, today=day).id
        cases.take_step(s, CADRE_2, cid, today=day)
        cases.take_step(s, TOWNSHIP_1, cid, today=day)
        assert s.get(Household, h.id).address == "东关村三组"
        with pytest.raises(InvalidInput, match="unknown case kind"):
            cases.open_case(s, CADRE_1, "adoption", h.id, "x")


def test_cases_and_the_notice_board_over_http(db_url, village):
    from ecpa.api.app import create_app
    from ecpa.people.service import create_user
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "cadre1", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, ADMIN, "cadre2", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, ADMIN, "buyer", PW, Role.CONSUMER)
    client = TestClient(create_app())
    c1, c2 = login(client, "cadre1"), login(client, "cadre2")
    r = client.post("/api/cases", headers=c1, json={"kind": "identification",
                                                    "household_id": village["new"], "reason": "ill"})
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert client.post(f"/api/cases/{cid}/steps", headers=c1, json={}).status_code == 409
    assert client.post(f"/api/cases/{cid}/steps", headers=login(client, "buyer"),
                       json={}).status_code == 403
    for who, step in ((c2, "village_appraisal"), (c1, "village_check")):
        r = client.post(f"/api/cases/{cid}/steps", headers=who, json={"step": step})
        assert r.status_code == 200, r.text
    assert r.json()["state"] == "in_notice"
    files = {"file": ("minutes.pdf", b"%PDF-1.4 minutes", "application/pdf")}
    assert client.post(f"/api/cases/{cid}/attachments", headers=c2, files=files).status_code == 201
    page = client.get(f"/notices/{VILLAGE_A}")
    assert page.status_code == 200 and "王*花" in page.text and "王小花" not in page.text
    pdf = client.get(f"/notices/{VILLAGE_A}/notice.pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    obj = client.post(f"/api/cases/{cid}/objections", json={"text": "has a car"})  # no sign-in
    assert obj.status_code == 201
    assert client.get(f"/api/cases/{cid}", headers=c1).json()["state"] == "objected"
    assert client.post("/api/cases", headers=c1, json={"kind": "exit", "household_id": 10**9,
                                                       "reason": "x"}).status_code == 422
    queue = client.get("/api/cases", headers=c2).json()
    assert [q["id"] for q in queue] == [cid] and queue[0]["you_may_act"] is False


def test_case_commands(db_url, village):
    from ecpa.cli import app
    from ecpa.people.service import create_user
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "cadre1", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, ADMIN, "cadre2", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        number = s.get(Household, village["new"]).number
    run = CliRunner().invoke
    r = run(app, ["case", "open", "identification", number, "--as", "cadre1", "--reason", "ill"])
    assert r.exit_code == 0 and "case 1 opened" in r.output, r.output
    r = run(app, ["case", "step", "1", "--as", "cadre1"])
    assert r.exit_code == 2 and "maker-checker" in r.output
    r = run(app, ["case", "step", "1", "--as", "cadre2", "--expect", "village_appraisal"])
    assert r.exit_code == 0 and "next: village_check" in r.output
    r = run(app, ["case", "list", "--as", "cadre1"])
    assert r.exit_code == 0 and "village_check" in r.output and "yes" in r.output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_assessment_proposes_cases_for_an_officer(db_url, village):
    from ecpa.registry.models import Income, IncomeSource
    with session_scope(db_url) as s:
        # Household 1 now earns well above the line: the assessment proposes its exit.
        s.scalar(select(Income).where(Income.household_id == village["identified"],
                                      Income.year == 2024,
                                      Income.source == IncomeSource.WAGES)).amount_fen = 9_000_000
    with session_scope(db_url) as s:
        with pytest.raises(PermissionDenied):
            cases.propose_from_assessment(s, CADRE_1, COUNTY, 2024)
        made = cases.propose_from_assessment(s, COUNTY_1, COUNTY, 2024)
        assert made["exit"] == 1
        again = cases.propose_from_assessment(s, COUNTY_1, COUNTY, 2024)
        assert again["exit"] == 0 and again["skipped"] == made["exit"] + made["monitoring_entry"]
        proposed = cases.queue(s, COUNTY_1, COUNTY)
        exit_case = next(c for c in proposed if c["kind"] == "exit")
        assert exit_case["household_id"] == village["identified"]
        assert exit_case["origin"] == "assessment:2024" and exit_case["current_step"] == "proposal"
        # The officer takes the proposal up; a cadre carries it on.
        cases.take_step(s, COUNTY_1, exit_case["id"], "income verified")
        cases.take_step(s, CADRE_1, exit_case["id"])
        assert cases.get_case(s, exit_case["id"]).step == 2


def test_a_closed_case_stays_closed_and_cases_are_for_officials(db_url, village):
    hid, day = village["identified"], date(2024, 6, 1)
    with session_scope(db_url) as s:
        cid = cases.open_case(s, CADRE_1, "exit", hid, "income above the line", today=day).id
        for who in (CADRE_2, TOWNSHIP_1, CADRE_1):
            cases.take_step(s, who, cid, today=day)
        a = cases.object_to(s, cid, "a", "still ill", today=day + timedelta(days=1))
        b = cases.object_to(s, cid, "b", "has debts", today=day + timedelta(days=1))
        cases.review_objection(s, TOWNSHIP_2, a.id, True, "confirmed")
        cases.review_objection(s, TOWNSHIP_2, b.id, False, "not so")  # must not revive it
        assert cases.get_case(s, cid).state is CaseState.REJECTED
        with pytest.raises(PermissionDenied):
            cases.queue(s, Actor("shopper", Role.CONSUMER), COUNTY)
        with pytest.raises(InvalidInput):
            cases.queue(s, COUNTY_1, COUNTY, state="bogus")
        with pytest.raises(InvalidInput, match="maps field names"):
            cases.open_case(s, CADRE_1, "data_change", hid, "x", {"fields": ["address"]})
