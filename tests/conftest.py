"""Fixtures: a migrated database on SQLite and on PostgreSQL (a database created on the
server at 127.0.0.1 for the test session), the demo regions, and register files."""

from __future__ import annotations

import csv
import os
import uuid
from datetime import date
from pathlib import Path

import pytest
from stdnum.cn import ric

# The browser-test fixtures (live server, headless chromium) for every test module.
pytest_plugins = ["web_support"]

PG_ADMIN_URL = os.environ.get("ECPA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = "test-secret-key-not-for-production"
COUNTY = "621221"  # 成县, Longnan, Gansu
TOWNSHIP = "621221100000"
VILLAGE_A = "621221100001"
VILLAGE_B = "621221100002"


def make_id(birth: date, seq: int, male: bool, region: str = COUNTY) -> str:
    """A valid resident ID number (correct MOD 11-2 check digit)."""
    seq3 = seq * 2 + (1 if male else 0)
    body = f"{region}{birth:%Y%m%d}{seq3 % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def _pg_available() -> bool:
    try:
        import psycopg
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres",
                             connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def pg_server_url():
    if not _pg_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is not reachable, and CI must run these tests")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable: PostgreSQL tests skipped")
    from sqlalchemy import create_engine, text

    name = f"ecpa_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    from ecpa.db import dispose_engines
    dispose_engines()
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _reset_schema(url: str) -> None:
    from sqlalchemy import text
    from ecpa.db import get_engine
    engine = get_engine(url)
    with engine.begin() as c:
        c.execute(text("DROP SCHEMA public CASCADE"))
        c.execute(text("CREATE SCHEMA public"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path, monkeypatch):
    """A freshly migrated database with the official regions of Gansu and a demo
    township with two villages; settings point at it."""
    from ecpa.config import reset_settings
    from ecpa.db import dispose_engines, session_scope, upgrade
    from ecpa.people.access import system_actor
    from ecpa.regions.service import import_regions_csv, load_official

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ecpa.db'}"
    else:
        url = request.getfixturevalue("pg_server_url")
        _reset_schema(url)
        # The same URL, another database's rows: no copy of the last one's may be kept.
        from ecpa.refcache import clear_all
        clear_all()
    monkeypatch.setenv("ECPA_DATABASE_URL", url)
    monkeypatch.setenv("ECPA_SECRET_KEY", SECRET)
    monkeypatch.setenv("ECPA_CONFIG", str(tmp_path / "absent.toml"))
    reset_settings()
    upgrade(url)
    with session_scope(url) as s:
        load_official(s, {"62"})
        n, errors = import_regions_csv(s, system_actor("test"), "\n".join([
            "code,name,parent_code,is_poor",
            f"{TOWNSHIP},城关镇,{COUNTY},no",
            f"{VILLAGE_A},东关村,{TOWNSHIP},yes",
            f"{VILLAGE_B},西关村,{TOWNSHIP},no",
        ]))
        assert not errors and n == 3
    yield url
    dispose_engines()
    reset_settings()


HEADER = ["household_number", "village_code", "address", "status", "status_date", "year",
          "income_wages", "income_farming_business", "income_transfers", "housing_safe",
          "drinking_water_safe", "toilet", "name", "id_number", "relation", "phone",
          "education", "schooling", "labour_ability", "medical_insurance", "monthly_wage"]


def good_rows() -> list[dict]:
    """Three households, seven members, in two villages."""
    return [
        dict(household_number="6212210001", village_code=VILLAGE_A, address="东关村一组",
             status="identified", status_date="2016-03-01", year="2024", income_wages="6000",
             income_farming_business="3200.50", income_transfers="1800", housing_safe="yes",
             drinking_water_safe="yes", toilet="sanitary", name="王大山",
             id_number=make_id(date(1968, 4, 2), 1, True), relation="head", phone="13812345678",
             education="primary", schooling="not_student", labour_ability="ordinary",
             medical_insurance="yes", monthly_wage="2500"),
        dict(household_number="6212210001", name="李秀兰", id_number=make_id(date(1970, 9, 12), 2, False),
             relation="spouse", education="illiterate", labour_ability="weak", medical_insurance="yes"),
        dict(household_number="6212210001", name="王小明", id_number=make_id(date(2014, 6, 30), 3, True),
             relation="child", schooling="primary", medical_insurance="yes"),
        dict(household_number="6212210002", village_code=VILLAGE_A, status="exited",
             status_date="2019-11-20", year="2024", income_wages="15000", name="赵金花",
             id_number=make_id(date(1955, 1, 5), 4, False), relation="head", medical_insurance="yes"),
        dict(household_number="6212210003", village_code=VILLAGE_B, status="monitored",
             status_date="2022-05-01", year="2024", income_farming_business="4100", name="陈铁柱",
             id_number=make_id(date(1980, 12, 31), 5, True), relation="head", phone="15900001111"),
        dict(household_number="6212210003", name="陈玉", id_number=make_id(date(2008, 2, 29), 6, False),
             relation="child", schooling="junior_secondary"),
        dict(household_number="6212210003", name="陈奶奶", id_number=make_id(date(1940, 7, 7), 7, False),
             relation="parent", labour_ability="none"),
    ]


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or HEADER
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow(r)
    return path


@pytest.fixture
def register_file(tmp_path) -> Path:
    return write_csv(tmp_path / "register.csv", good_rows())


PW = "password-123"  # the password of every test user


def login(client, user) -> dict:
    """Sign in through the API; the Authorization header for the user."""
    r = client.post("/api/auth/token", data={"username": user, "password": PW})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
