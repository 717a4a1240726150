"""The path report (seed 000 §IV): income by channel from the ledger, the
multidimensional path's savings, households lifted out and returned, the MPI; as JSON,
a web page, Excel and PDF."""

from __future__ import annotations

import io
import re
import zipfile
from datetime import date

import pytest
from conftest import COUNTY, PW, VILLAGE_A, login
from fastapi.testclient import TestClient
from sqlalchemy import select

from ecpa.db import session_scope
from ecpa.ledger.models import AccountKind, Channel
from ecpa.ledger.service import Leg, open_account, post
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Status
from ecpa.registry.service import record_status
from ecpa.reports.path import path_report, to_pdf, to_xlsx

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)


@pytest.fixture
def year_of_work(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        h1, h2, h3 = s.scalars(select(Household.id).order_by(Household.number)).all()
        open_account(s, "coop", "cooperative", AccountKind.COOPERATIVE)
        for h in (h1, h2, h3):
            open_account(s, f"hh:{h}", f"household {h}", AccountKind.HOUSEHOLD, household_id=h)
        d = date(2024, 9, 1)
        post(s, ADMIN, "b1", d, "buy-back", [Leg("coop", 300_000), Leg(f"hh:{h1}", -300_000, h1, Channel.INDUSTRY)])
        post(s, ADMIN, "w1", d, "wages", [Leg("coop", 120_000), Leg(f"hh:{h3}", -120_000, h3, Channel.EMPLOYMENT)])
        post(s, ADMIN, "d1", d, "dividend", [Leg("coop", 5_000), Leg(f"hh:{h3}", -5_000, h3, Channel.FINANCIAL)])
        post(s, ADMIN, "t1", d, "training subsidy", [Leg("coop", 800), Leg(f"hh:{h1}", -800, h1, Channel.EDUCATION)])
        post(s, ADMIN, "old", date(2023, 5, 1), "last year", [Leg("coop", 7), Leg(f"hh:{h1}", -7, h1, Channel.INDUSTRY)])
        record_status(s, ADMIN, h1, Status.EXITED, date(2024, 12, 1), "income above the line")
        create_user(s, ADMIN, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ADMIN, "cadre", PW, Role.VILLAGE_CADRE, VILLAGE_A)
    return h1, h3


def test_the_path_report_adds_up_from_the_ledger(db_url, year_of_work):
    with session_scope(db_url) as s:
        r = path_report(s, OFFICER, COUNTY, 2024)
    assert r["income_path"]["industry"] == {"fen": 300_000, "households": 1}
    assert r["income_path"]["employment"] == {"fen": 120_000, "households": 1}
    assert r["income_path"]["financial"] == {"fen": 5_000, "households": 1}
    assert r["income_path"]["entrepreneurship"] == {"fen": 0, "households": 0}
    assert r["income_total_fen"] == 425_000
    assert r["multidimensional_path"]["education"] == {"fen": 800, "households": 1}
    assert r["households"]["lifted_out"] == 1 and r["households"]["returned"] == 0
    assert 0 <= r["mpi"]["H"] <= 1 and r["mpi"]["indicators"]
    book = zipfile.ZipFile(io.BytesIO(to_xlsx(r)))
    assert "xl/worksheets/sheet1.xml" in book.namelist()
    assert to_pdf(r).startswith(b"%PDF")


def test_the_path_report_over_http_and_on_the_web(db_url, year_of_work):
    from ecpa.api.app import create_app
    client = TestClient(create_app())
    officer = login(client, "officer")
    r = client.get("/api/reports/path", params={"region": COUNTY, "year": 2024}, headers=officer)
    assert r.status_code == 200 and r.json()["income_total_fen"] == 425_000
    x = client.get("/api/reports/path.xlsx", params={"region": COUNTY, "year": 2024}, headers=officer)
    assert x.status_code == 200 and x.content[:2] == b"PK"
    p = client.get("/api/reports/path.pdf", params={"region": COUNTY, "year": 2024}, headers=officer)
    assert p.content.startswith(b"%PDF")
    assert client.get("/api/reports/path", params={"region": COUNTY, "year": 2024},
                      headers=login(client, "cadre")).status_code == 403
    # The web page, signed in through the form.
    web = TestClient(create_app())
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/signin").text).group(1)
    web.post("/signin", data={"username": "officer", "password": PW, "csrf": csrf})
    page = web.get("/reports/path", params={"region": COUNTY, "year": 2024},
                   headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "扶贫路径报告" in page.text and "¥3,000.00" in page.text
    assert web.get("/reports/path", params={"region": COUNTY, "year": 2024, "fmt": "pdf"}).content.startswith(b"%PDF")
