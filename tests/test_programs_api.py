"""Contract farming through the HTTP API, on SQLite and PostgreSQL: seed 000's running
chickens from program to settlement."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import COUNTY, PW, VILLAGE_A, login
from ecpa.db import session_scope
from ecpa.people.access import system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind

@pytest.fixture
def api(db_url, register_file):
    from ecpa.api.app import create_app
    with session_scope(db_url) as s:
        actor = system_actor("test")
        import_register(s, actor, register_file)
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="跑步鸡合作社",
                            credit_code="93621221MA7K123451", region_code=COUNTY)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add_all([coop, ent])
        s.flush()
        create_user(s, actor, "coop", PW, Role.COOPERATIVE_MANAGER, COUNTY)
        create_user(s, actor, "cadre", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        ids = s.scalars(select(Household.id).order_by(Household.number)).all()
        orgs = (coop.id, ent.id)
    return TestClient(create_app()), ids, orgs


def test_running_chickens_from_program_to_settlement(api):
    client, (h1, h2, _), (coop, ent) = api
    h = login(client, "coop")
    body = dict(name="running chickens", product="free-range chicken", unit="chicken",
                cycle_days=160, start_date="2024-03-01", input_cost_per_unit_fen=7_000,
                floor_price_fen=10_000, premium_fen=0, grades={"A": 10_000, "B": 9_000},
                guarantor_kind="government", guarantor_name="county poverty fund",
                cooperative_id=coop, enterprise_id=ent)
    assert client.post("/api/programs/farming", json=body,
                       headers=login(client, "cadre")).status_code == 403
    bad = client.post("/api/programs/farming", json={**body, "input_cost_per_unit_fen": 70.5},
                      headers=h)
    assert bad.status_code == 422 and "input_cost_per_unit_fen" in bad.text
    r = client.post("/api/programs/farming", json=body, headers=h)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.json()["cycle_ends"] == "2024-08-08"
    for hid, units in ((h1, 100), (h2, 50)):
        r = client.post(f"/api/programs/farming/{pid}/enrolments",
                        json={"household_id": hid, "units": units, "date": "2024-03-01"}, headers=h)
        assert r.status_code == 201, r.text
    r = client.post(f"/api/programs/farming/{pid}/market-prices",
                    json={"date": "2024-08-01", "price_fen": 9_500}, headers=h)
    assert r.json()["protective_price_fen"] == 10_000          # the floor protects
    buy = {"household_id": h1, "key": "h1-all", "date": "2024-08-08", "quantity": 100, "grade": "A"}
    r = client.post(f"/api/programs/farming/{pid}/buy-backs", json=buy, headers=h)
    assert r.status_code == 201 and r.json()["amount_fen"] == 1_000_000
    again = client.post(f"/api/programs/farming/{pid}/buy-backs", json=buy, headers=h)
    assert again.json() == r.json()                            # the same delivery, once
    assert client.post(f"/api/programs/farming/{pid}/losses",
                       json={"household_id": h2, "lost_units": 40}, headers=h).status_code == 200
    r = client.post(f"/api/programs/farming/{pid}/buy-backs", headers=h, json={
        "household_id": h2, "key": "h2-rest", "date": "2024-08-08", "quantity": 10, "grade": "B"})
    assert r.json()["amount_fen"] == 90_000
    early = client.post(f"/api/programs/farming/{pid}/settlement", json={"date": "2024-08-01"},
                        headers=h)
    assert early.status_code == 409 and "cycle ends" in early.json()["message"]
    r = client.post(f"/api/programs/farming/{pid}/settlement", json={"date": "2024-08-08"}, headers=h)
    assert r.status_code == 200, r.text
    lines = {l["household_id"]: l for l in r.json()["lines"]}
    # 100 chickens x 100 yuan - 7,000 yuan of inputs: 3,000 yuan paid (seed 000).
    assert lines[h1]["paid_fen"] == 300_000 and lines[h1]["guarantee_fen"] == 0
    # 10 x 90 yuan against 3,500 yuan of inputs: the guarantor covers 2,600 yuan.
    assert lines[h2]["guarantee_fen"] == 260_000 and lines[h2]["paid_fen"] == 0
    r = client.post(f"/api/programs/farming/{pid}/settlement", json={"date": "2024-08-08"}, headers=h)
    assert all(l["already_settled"] for l in r.json()["lines"])
    shown = client.get(f"/api/programs/farming/{pid}", headers=h).json()
    assert [(e["household_id"], e["settled"], e["account_balance_fen"]) for e in shown["enrolments"]] \
        == [(h1, True, 0), (h2, True, 0)]
    assert client.get("/api/programs/farming/999", headers=h).status_code == 404


def test_loan_schedule(api):
    """The Yanling-style no-collateral loan: 50,000 yuan at 4.35 % over 36 months."""
    import numpy_financial as npf
    client, _, _ = api
    h = login(client, "coop")
    r = client.post("/api/programs/loans/schedule", headers=h, json={
        "principal_fen": 5_000_000, "annual_rate": "0.0435", "months": 36,
        "method": "equal_instalments", "first_due": "2024-02-15"})
    assert r.status_code == 200, r.text
    rows = r.json()["instalments"]
    assert len(rows) == 36 and r.json()["total_principal_fen"] == 5_000_000
    assert rows[0]["due"] == "2024-02-15" and rows[-1]["balance_fen"] == 0
    expected = -npf.pmt(0.0435 / 12, 36, 50_000) * 100
    assert all(abs(x["payment_fen"] - expected) <= 1 for x in rows[:-1])
    bad = client.post("/api/programs/loans/schedule", headers=h, json={
        "principal_fen": 5_000_000, "annual_rate": "1.5", "months": 36,
        "method": "equal_instalments", "first_due": "2024-02-15"})
    assert bad.status_code == 422 and "annual_rate" in bad.text
