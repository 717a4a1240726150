"""A county officer's assessment from the live database (API and CLI), and monitoring
proposals written back, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import COUNTY, HEADER, PW, VILLAGE_A, good_rows, login, write_csv
from ecpa.db import session_scope
from ecpa.people.access import system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register

@pytest.fixture
def api(db_url, tmp_path):
    from ecpa.api.app import create_app
    rows = good_rows()
    # The exited household (赵金花): not sure of food, and 12,000 yuan of medical bills
    # against an income of 15,000 yuan.
    rows[3].update(food_secure="no", clothing_secure="yes", medical_expense="12000")
    path = write_csv(tmp_path / "register.csv", rows,
                     HEADER + ["food_secure", "clothing_secure", "medical_expense"])
    with session_scope(db_url) as s:
        actor = system_actor("test")
        report = import_register(s, actor, path)
        assert not report.errors
        create_user(s, actor, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, actor, "cadre_a", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, actor, "other", PW, Role.COUNTY_OFFICER, "621222")
    return TestClient(create_app())


def test_officer_assesses_the_county_and_proposes_monitoring(api):
    h = login(api, "officer")
    r = api.get(f"/api/measure/regions/{COUNTY}", params={"year": 2024}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["households"] == 3
    total = [x for x in body["income_poverty"] if x["level"] == "total" and x["line"] == "cn_rural"][0]
    # Household 1: 11,000.50 yuan / 3 persons; household 3: 4,100 / 3; household 2: 15,000 / 1.
    assert total["headcount_ratio"] == pytest.approx(6 / 7)
    risky = {x["household_number"]: x for x in body["at_risk"]}
    assert set(risky) == {"6212210002"}
    assert risky["6212210002"]["risk_category"] == "unstable_exited"
    assert set(risky["6212210002"]["risk_reasons"].split(",")) == {"medical_burden", "guarantee_failed"}
    assert risky["6212210002"]["fails"] == "food"
    levels = {x["level"] for x in body["mpi"]}
    assert {"total", "township", "village"} <= levels

    r = api.post(f"/api/measure/regions/{COUNTY}/proposals", params={"year": 2024}, headers=h)
    assert r.status_code == 200 and r.json()["added"] == 1
    r = api.post(f"/api/measure/regions/{COUNTY}/proposals", params={"year": 2024}, headers=h)
    assert r.json()["added"] == 0                       # idempotent
    listed = api.get(f"/api/measure/regions/{COUNTY}/proposals", headers=h).json()
    assert [(p["household_number"], p["category"], p["state"]) for p in listed] == \
        [("6212210002", "unstable_exited", "open")]


def test_scope_and_role_are_checked(api):
    r = api.get(f"/api/measure/regions/{COUNTY}", params={"year": 2024}, headers=login(api, "cadre_a"))
    assert r.status_code == 403
    r = api.get(f"/api/measure/regions/{COUNTY}", params={"year": 2024}, headers=login(api, "other"))
    assert r.status_code == 403 and "outside your scope" in r.json()["message"]
    r = api.get(f"/api/measure/regions/{COUNTY}", params={"year": 2024, "profile": "nope"},
                headers=login(api, "officer"))
    assert r.status_code == 422 and "unknown profile" in r.json()["message"]
    r = api.get(f"/api/measure/regions/{COUNTY}", headers=login(api, "officer"))
    assert r.status_code == 422


def test_cli_region_assessment(api):
    from ecpa.cli import app
    res = CliRunner().invoke(app, ["measure", "region", COUNTY, "--year", "2024", "--propose"])
    assert res.exit_code == 0, res.output
    assert "3 households of 621221" in res.output
    assert "1 new monitoring proposals" in res.output


def test_attributed_income_endpoint_checks_role(api):
    r = api.post("/api/ledger/attributed-income/2024", headers=login(api, "officer"))
    assert r.status_code == 200, r.text
    assert r.json() == {"year": 2024, "created": 0, "raised": 0, "unchanged": 0, "outside_scope": 0}
    assert api.post("/api/ledger/attributed-income/2024",
                    headers=login(api, "cadre_a")).status_code == 403
    assert api.post("/api/ledger/attributed-income/1800",
                    headers=login(api, "officer")).status_code == 422
