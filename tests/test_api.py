"""The HTTP API with its permission checks, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from fastapi.testclient import TestClient

from conftest import COUNTY, PW, VILLAGE_A, VILLAGE_B, login, make_id
from ecpa.db import session_scope
from ecpa.people.access import system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register

@pytest.fixture
def api(db_url, register_file):
    from ecpa.api.app import create_app
    with session_scope(db_url) as s:
        actor = system_actor("test")
        import_register(s, actor, register_file)
        create_user(s, actor, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, actor, "cadre_a", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, actor, "cadre_b", PW, Role.VILLAGE_CADRE, VILLAGE_B)
        create_user(s, actor, "buyer", PW, Role.CONSUMER)
    return TestClient(create_app())


def hid(client, headers, number):
    r = client.get("/api/households", params={"number": number}, headers=headers)
    return r.json()["items"][0]["id"]


def test_sign_in_required_and_wrong_password(api):
    assert api.get("/api/households").status_code == 401
    r = api.post("/api/auth/token", data={"username": "officer", "password": "nope-nope"})
    assert r.status_code == 401 and r.json()["error"] == "not_authenticated"


def test_cadre_is_refused_another_villages_household(api):
    officer = login(api, "officer")
    other = hid(api, officer, "6212210003")  # in village B
    own = hid(api, officer, "6212210001")  # in village A
    cadre = login(api, "cadre_a")
    r = api.get(f"/api/households/{other}", headers=cadre)
    assert r.status_code == 403 and "outside your scope" in r.json()["message"]
    assert api.get(f"/api/households/{own}", headers=cadre).status_code == 200
    # Listing shows only the cadre's own village.
    listed = api.get("/api/households", headers=cadre).json()
    assert listed["total"] == 2 and {i["village_code"] for i in listed["items"]} == {VILLAGE_A}
    # Writing is refused as well.
    r = api.patch(f"/api/households/{other}", json={"address": "x"}, headers=cadre)
    assert r.status_code == 403


def test_consumer_cannot_read_the_registry(api):
    r = api.get("/api/households", headers=login(api, "buyer"))
    assert r.status_code == 403


def test_id_numbers_masked_unless_officer_reveals(api):
    officer = login(api, "officer")
    h = hid(api, officer, "6212210001")
    full = make_id(date(1968, 4, 2), 1, True)
    body = api.get(f"/api/households/{h}", headers=officer).json()
    head = body["members"][0]
    assert head["id_number"] == full[:6] + "********" + full[-4:]
    assert head["phone"] == "138****5678"
    revealed = api.get(f"/api/households/{h}", params={"reveal": True}, headers=officer).json()
    assert revealed["members"][0]["id_number"] == full
    cadre = login(api, "cadre_a")
    assert api.get(f"/api/households/{h}", params={"reveal": True}, headers=cadre).status_code == 403
    # Every read is audited.
    from sqlalchemy import select
    from ecpa.people.models import AuditEntry
    with session_scope() as s:
        actions = [(a.actor, a.action) for a in s.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == str(h)))]
    assert ("officer", "read") in actions and ("officer", "reveal") in actions


def test_find_by_id_number_uses_keyed_hash(api):
    officer = login(api, "officer")
    r = api.get("/api/households", params={"id_number": make_id(date(2008, 2, 29), 6, False)},
                headers=officer)
    assert [i["number"] for i in r.json()["items"]] == ["6212210003"]


def test_create_household_and_errors(api):
    cadre = login(api, "cadre_a")
    body = {"number": "6212210050", "village_code": VILLAGE_A,
            "members": [{"name": "周平", "id_number": make_id(date(1990, 1, 1), 40, True),
                         "relation": "head"}]}
    r = api.post("/api/households", json=body, headers=cadre)
    assert r.status_code == 201, r.text
    assert r.json()["members"][0]["birth_date"] == "1990-01-01"
    assert api.post("/api/households", json=body, headers=cadre).status_code == 409
    bad = dict(body, number="6212210051",
               members=[{"name": "周平", "id_number": "621221199001010001", "relation": "head"}])
    r = api.post("/api/households", json=bad, headers=cadre)
    assert r.status_code == 422 and "check digit" in r.json()["message"]
    r = api.post("/api/households", json=dict(body, number="x", village_code="abc"), headers=cadre)
    assert r.status_code == 422 and "village_code" in r.json()["message"]
    other = dict(body, number="6212210052", village_code=VILLAGE_B)
    assert api.post("/api/households", json=other, headers=cadre).status_code == 403
    assert api.get("/api/households/999999", headers=cadre).status_code == 404


def test_status_changes_only_through_cases_and_help_measures(api):
    officer = login(api, "officer")
    h = hid(api, officer, "6212210001")  # identified
    # No direct status change: the history is written by a completed case (/api/cases).
    r = api.post(f"/api/households/{h}/status-events", headers=officer,
                 json={"status": "exited", "date": "2020-06-30", "reason": "income above the line"})
    assert r.status_code in (404, 405)
    r = api.post("/api/cases", headers=officer, json={"kind": "exit", "household_id": h,
                                                      "reason": "income above the line"})
    assert r.status_code == 201 and r.json()["current_step"] == "democratic_appraisal"
    cadre = login(api, "cadre_a")
    r = api.post(f"/api/households/{h}/help-measures", headers=cadre,
                 json={"kind": "ecommerce", "cadre_name": "李红梅", "start_date": "2021-03-01",
                       "description": "online shop training"})
    assert r.status_code == 201
    r = api.post(f"/api/households/{h}/help-measures", headers=cadre,
                 json={"kind": "banking", "cadre_name": "李红梅", "start_date": "2021-03-01"})
    assert r.status_code == 422 and "kind" in r.json()["message"]
    detail = api.get(f"/api/households/{h}", headers=officer).json()
    assert [e["status"] for e in detail["status_history"]] == ["identified"]
    assert detail["status"] == "identified" and detail["help_measures"][0]["kind"] == "ecommerce"


def test_import_through_the_api(api, tmp_path):
    from conftest import good_rows, write_csv
    officer = login(api, "officer")
    rows = good_rows()
    rows[0]["income_wages"] = "-5"
    path = write_csv(tmp_path / "bad.csv", rows)
    with path.open("rb") as fh:
        r = api.post("/api/registry/import", files={"file": ("bad.csv", fh, "text/csv")},
                     headers=officer)
    assert r.status_code == 200
    body = r.json()
    assert body["written"] is False
    assert body["errors"][0] == {"row": 2, "column": "income_wages", "value": "-5",
                                 "reason": "must not be negative", "household": "6212210001"}


def test_organisation_with_checked_credit_code(api):
    from stdnum.cn import uscc
    officer = login(api, "officer")
    body17 = "93621221MA7K12345"  # 93: farmers' cooperative
    good = body17 + uscc.calc_check_digit(body17)
    bad = body17 + ("0" if good[-1] != "0" else "1")
    org = {"kind": "cooperative", "name": "成县核桃专业合作社", "region_code": VILLAGE_A}
    r = api.post("/api/organisations", json=dict(org, credit_code=bad), headers=officer)
    assert r.status_code == 422 and "credit_code" in r.json()["message"]
    r = api.post("/api/organisations", json=dict(org, credit_code=good), headers=officer)
    assert r.status_code == 201 and r.json()["credit_code"] == good
    assert api.post("/api/organisations", json=dict(org, credit_code=good),
                    headers=officer).status_code == 409
    listed = api.get("/api/organisations", headers=login(api, "cadre_b")).json()
    assert listed == []  # another village's cooperative is outside the cadre's scope
    listed = api.get("/api/organisations", headers=login(api, "cadre_a")).json()
    assert [o["name"] for o in listed] == ["成县核桃专业合作社"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_malformed_requests_get_clear_4xx_never_500(api):
    officer = login(api, "officer")
    cases = [
        ("get", "/api/households/abc", {}),
        ("get", "/api/households?page=0", {}),
        ("get", "/api/households?status=rich", {}),
        ("post", "/api/households", {"content": b"{not json", "headers": {"content-type": "application/json"}}),
        ("post", "/api/households", {"json": {"number": "1", "village_code": "621221100001", "members": []}}),
        ("post", "/api/households", {"json": [1, 2, 3]}),
        ("patch", "/api/households/1", {"json": {}}),
        ("put", "/api/households/1/incomes", {"json": {"year": 2024, "source": "wages", "amount_fen": -1}}),
        ("put", "/api/households/1/incomes", {"json": {"year": 2024, "source": "wages", "amount_fen": 1.5}}),
        ("post", "/api/households/1/status-events", {"json": {"status": "exited", "date": "2024-02-30", "reason": "x"}}),
        ("post", "/api/registry/import", {"files": {"file": ("x.txt", b"hello", "text/plain")}}),
        ("post", "/api/registry/import", {"files": {"file": ("x.xlsx", b"not a workbook", "application/octet-stream")}}),
        ("post", "/api/registry/import", {"files": {"file": ("x.csv", b"a,b\n1,2\n", "text/csv")}}),
    ]
    for method, url, kw in cases:
        headers = {**officer, **kw.pop("headers", {})}
        r = getattr(api, method)(url, headers=headers, **kw)
        assert 400 <= r.status_code < 500, (method, url, r.status_code, r.text)
        body = r.json()
        assert body.get("message") or body.get("detail"), (url, body)
