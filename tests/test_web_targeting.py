"""Pages of the targeting work: anyone files a grievance and follows it by reference (no
personal data shown); a cadre sees its village's data-quality worklist, and only its own."""

from __future__ import annotations

import re

from conftest import COUNTY, PW, VILLAGE_A, VILLAGE_B
from fastapi.testclient import TestClient
from sqlalchemy import select

from ecpa.db import session_scope
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Member, Relation

ADMIN = system_actor("test")


def _client():
    from ecpa.api.app import create_app
    return TestClient(create_app())


def _csrf(client, path):
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def _sign_in(client, user):
    client.post("/signin", data={"username": user, "password": PW, "csrf": _csrf(client, "/signin")})


def test_anyone_files_a_grievance_and_follows_it(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
    client = _client()
    zh = {"Accept-Language": "zh-CN"}
    form = client.get("/grievances/new", headers=zh)
    assert form.status_code == 200 and "漏评" in form.text
    bad = client.post("/grievances/new", headers=zh, data={
        "csrf": _csrf(client, "/grievances/new"), "category": "left_out", "region": "999",
        "text": "x"})
    assert bad.status_code == 422 and "<form" in bad.text  # the form again, with the reason
    r = client.post("/grievances/new", headers=zh, follow_redirects=False, data={
        "csrf": _csrf(client, "/grievances/new"), "category": "left_out", "region": VILLAGE_A,
        "text": "我家老人重病，没有被评为贫困户", "contact_name": "张三", "contact_phone": "13912345678"})
    assert r.status_code == 303
    page = client.get(r.headers["location"], headers=zh)
    reference = re.search(r"G-\d{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", page.text).group(0)
    assert "已受理" in page.text and "漏评" in page.text
    assert "张三" not in page.text and "13912345678" not in page.text and "重病" not in page.text
    # The reference typed back in lower case, without dashes, on another phone.
    again = _client().get("/grievances/track", params={"reference": reference.lower().replace("-", "")},
                          headers=zh)
    assert reference in again.text and "办结期限" in again.text


def test_a_cadre_sees_its_villages_worklist(db_url, register_file):
    from ecpa.quality.service import run_region
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        # A member older than 110: the quality rules flag it.
        h = s.scalar(select(Household.id).where(Household.village_code == VILLAGE_A))
        from datetime import date
        m = s.scalar(select(Member).where(Member.household_id == h, Member.relation != Relation.HEAD))
        m.birth_date = date(1900, 1, 1)
        create_user(s, ADMIN, "cadre_a", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, ADMIN, "cadre_b", PW, Role.VILLAGE_CADRE, VILLAGE_B)
        run_region(s, Actor("officer", Role.COUNTY_OFFICER, COUNTY), COUNTY, 2024)
    client = _client()
    _sign_in(client, "cadre_a")
    page = client.get("/quality", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Data to check" in page.text and "Q-MEM-001" in page.text
    other = _client()
    _sign_in(other, "cadre_b")
    refused = other.get("/quality", params={"village": VILLAGE_A})
    assert refused.status_code == 403 and "<html" in refused.text
