"""The web pages: the consumer's way in on a cheap phone (home → pavilion → product →
sign in → add to cart), Chinese by default and English by the switch; sign-in with CSRF
and a limit on failed attempts; every public page under 100 KB transferred."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conftest import COUNTY, PW, VILLAGE_A
from ecpa.db import session_scope
from ecpa.market import catalog
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household
from web_support import shot, transfer_size

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
BUDGET = 100 * 1024


@pytest.fixture
def store(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        h1 = s.scalars(select(Household.id).order_by(Household.number)).first()
        create_user(s, ADMIN, "alice", PW, Role.CONSUMER)
        seller = catalog.create_seller(s, OFFICER, kind="household", name="王家蜂蜜",
                                       region_code=VILLAGE_A, household_id=h1, manager_username="cadre")
        catalog.certify(s, OFFICER, seller.id, "a registered poor household")
        honey = catalog.add_product(s, OFFICER, seller.id, name="土蜂蜜", category="food",
                                    origin_code=VILLAGE_A, description="山里的百花蜜")
        catalog.add_sku(s, OFFICER, honey.id, code="HONEY-500", title="500 g", unit="jar",
                        weight_g=600, price_fen=6_800, stock=20)
        catalog.set_pavilion(s, OFFICER, COUNTY, "成县特色馆", "核桃之乡，陇南的山货。", [honey.id])
        return {"product": honey.id}


def test_the_consumer_way_in_on_a_cheap_phone(store, live_server, phone):
    page = phone
    page.goto(live_server.url + "/")
    assert "县域特色馆" in page.content()  # Chinese, from the browser's language
    shot(page, "home-zh")
    page.click("text=成县特色馆")
    assert "核桃之乡" in page.content()
    shot(page, "pavilion")
    page.click("text=土蜂蜜")
    assert "扶贫认定" in page.content() and "¥68.00" in page.content()
    shot(page, "product")
    page.click("button:has-text('加入购物车')")
    assert "/signin" in page.url  # a buyer signs in first
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PW)
    page.click("form[action='/signin'] button")
    assert page.url.endswith("/products/%d" % store["product"])
    page.click("text=English")
    assert "Add to cart" in page.content() and "Sign out alice" in page.content()
    shot(page, "product-en")


def test_public_pages_fit_the_budget(store, live_server, phone):
    for path in ("/", f"/pavilions/{COUNTY}", f"/products/{store['product']}", "/search?q=蜂蜜",
                 "/signin", f"/notices/{VILLAGE_A}", "/grievances/new", "/grievances/track"):
        size = transfer_size(phone, live_server.url + path)
        assert 0 < size < BUDGET, (path, size)


def test_signin_csrf_and_attempt_limit(store):
    from ecpa.api.app import create_app
    from ecpa.web.security import limiter
    limiter._fails.clear()
    client = TestClient(create_app())
    form = client.get("/signin").text
    token = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    refused = client.post("/signin", data={"username": "alice", "password": PW, "csrf": "forged"})
    assert refused.status_code == 403 and "<html" in refused.text  # an HTML error page
    for _ in range(5):
        bad = client.post("/signin", data={"username": "alice", "password": "wrong", "csrf": token})
        assert bad.status_code == 401
    locked = client.post("/signin", data={"username": "alice", "password": PW, "csrf": token})
    assert locked.status_code == 429
    limiter._fails.clear()
    ok = client.post("/signin", data={"username": "alice", "password": PW, "csrf": token,
                                      "next": "https://evil.example/"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # never an open redirect
    for sneaky in ("///evil.example", "//evil.example", "/\\evil.example"):
        r = client.get("/lang/en", params={"next": sneaky}, follow_redirects=False)
        assert r.headers["location"] == "/", sneaky
    assert client.get("/api/health").json()["status"] == "ok"


def test_every_interface_string_has_a_chinese_translation():
    from pathlib import Path

    from babel.messages.extract import extract_from_dir

    from ecpa.web.i18n import translations
    root = Path(__file__).resolve().parent.parent / "src" / "ecpa" / "web"
    zh = translations("zh_CN")
    missing = set()
    for _f, _l, msg, _c, _x in extract_from_dir(str(root / "templates"), method_map=[("**.html", "jinja2")],
                                                options_map={"**.html": {"extensions": "jinja2.ext.i18n"}}):
        msg = msg if isinstance(msg, str) else msg[0]
        if zh.gettext(msg) == msg:
            missing.add(msg)
    assert not missing, sorted(missing)
