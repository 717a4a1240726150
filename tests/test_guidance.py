"""Production guidance: a seasonal demand with campaign months is forecast within its
bands; the production plan shares the forecast among a cooperative's members and adds
up; over HTTP."""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from conftest import COUNTY, PW, VILLAGE_A, login
from fastapi.testclient import TestClient
from sqlalchemy import select

from ecpa.db import session_scope
from ecpa.guidance.forecast import forecast
from ecpa.guidance.service import demand_forecast, production_plan
from ecpa.market import catalog
from ecpa.market.models import Order, OrderLine, OrderState
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)


def truth(month_index: int, campaign: float) -> float:
    """Walnuts: a winter peak, and poverty alleviation days in November sell more."""
    return 200 + 80 * math.cos(2 * math.pi * (month_index - 11) / 12) + 150 * campaign


def test_a_seasonal_demand_with_campaign_days_is_forecast_within_its_bands():
    rng = np.random.default_rng(7)
    index = pd.period_range("2021-01", "2024-06", freq="M")
    campaign = pd.Series([0.33 if p.month == 11 else 0.0 for p in index], index=index)
    sold = pd.Series([truth(p.month, c) + rng.normal(0, 10) for p, c in zip(index, campaign)],
                     index=index)
    future_campaign = np.array([0.33 if m == 11 else 0.0 for m in (7, 8, 9, 10, 11, 12)])
    f = forecast(sold, campaign, 6, future_campaign)
    expected = [truth(m, c) for m, c in zip((7, 8, 9, 10, 11, 12), future_campaign)]
    assert f.months == ["2024-07", "2024-08", "2024-09", "2024-10", "2024-11", "2024-12"]
    errors = [abs(a - b) / b for a, b in zip(f.mean, expected)]
    assert max(errors) < 0.15, (f.mean, expected)
    assert all(lo <= e <= hi for lo, e, hi in zip(f.low95, expected, f.high95))
    assert f.mean[4] > f.mean[3] + 40  # November's campaign days lift the forecast
    assert "campaign" in f.method and "(1,0,0,12)" in f.method


@pytest.fixture
def walnut_history(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        ids = s.scalars(select(Household.id).order_by(Household.number)).all()
        org = Organisation(kind=OrganisationKind.COOPERATIVE, name="核桃合作社",
                           credit_code="93621221MA7K123451", region_code=COUNTY)
        s.add(org)
        s.flush()
        seller = catalog.create_seller(s, OFFICER, kind="cooperative", name="核桃合作社",
                                       region_code=COUNTY, organisation_id=org.id, manager_username="coop")
        product = catalog.add_product(s, OFFICER, seller.id, name="核桃", category="agricultural",
                                      origin_code=VILLAGE_A)
        sku = catalog.add_sku(s, OFFICER, product.id, code="W", title="1 kg", unit="bag",
                              weight_g=1000, price_fen=3000, stock=10**6)
        # Thirty months of sales history (the orders as the marketplace records them).
        for p in pd.period_range("2022-01", "2024-06", freq="M"):
            units = int(round(truth(p.month, 0)))
            at = datetime(p.year, p.month, 15)
            o = Order(buyer="b", checkout_key=str(p), state=OrderState.COMPLETED, items_fen=units * 3000,
                      total_fen=units * 3000, ship_to_code=COUNTY, reserved_until=at, created_at=at)
            s.add(o)
            s.flush()
            s.add(OrderLine(order_id=o.id, sku_id=sku.id, seller_id=seller.id, quantity=units,
                            unit_price_fen=3000, amount_fen=units * 3000, households=[]))
        from ecpa.cooperatives.service import join, set_charter
        set_charter(s, OFFICER, org.id, 2024, "gansu-3.2")
        join(s, OFFICER, org.id, ids[0], date(2024, 1, 1), land_mu=6, labourers=2)
        join(s, OFFICER, org.id, ids[2], date(2024, 1, 1), land_mu=2, labourers=2)
        return org.id, product.id


def test_the_production_plan_shares_the_forecast_among_members(db_url, walnut_history):
    coop, product = walnut_history
    with session_scope(db_url) as s:
        f = demand_forecast(s, OFFICER, product_id=product, horizon=6, until=date(2024, 6, 30))
        assert len(f["history"]) == 30 and f["forecast"][0]["month"] == "2024-07"
        plan = production_plan(s, OFFICER, coop, product, months=6, loss_rate=0.05,
                               until=date(2024, 6, 30))
    demand = sum(x["units"] for x in f["forecast"])
    assert plan["plan_units"] == round(demand / 0.95)
    assert sum(m["units"] for m in plan["members"]) == plan["plan_units"]
    # Land 6 : 2 mu and labour 2 : 2: shares (0.75 + 0.5) / 2 and (0.25 + 0.5) / 2.
    assert [m["share"] for m in plan["members"]] == [0.625, 0.375]
    assert plan["plan_low80"] <= plan["plan_units"] <= plan["plan_high80"]


def test_guidance_over_http(db_url, walnut_history):
    from ecpa.api.app import create_app
    from ecpa.people.service import create_user
    coop, product = walnut_history
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "manager", PW, Role.COOPERATIVE_MANAGER, COUNTY)
        create_user(s, ADMIN, "buyer", PW, Role.CONSUMER)
    client = TestClient(create_app())
    r = client.get("/api/guidance/plan", params={"cooperative_id": coop, "product_id": product},
                   headers=login(client, "manager"))
    assert r.status_code == 200 and len(r.json()["members"]) == 2
    assert client.get("/api/guidance/demand", params={"product_id": product},
                      headers=login(client, "buyer")).status_code == 403
    bad = client.get("/api/guidance/demand", params={"product_id": product, "horizon": 99},
                     headers=login(client, "manager"))
    assert bad.status_code == 422 and "horizon" in bad.json()["message"]


def test_the_cooperative_manager_sees_the_plan_on_the_web(db_url, walnut_history):
    import re

    from ecpa.api.app import create_app
    from ecpa.people.service import create_user
    coop, product = walnut_history
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "manager", PW, Role.COOPERATIVE_MANAGER, COUNTY)
    web = TestClient(create_app())
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/signin").text).group(1)
    web.post("/signin", data={"username": "manager", "password": PW, "csrf": csrf})
    page = web.get("/guidance/plan", params={"cooperative_id": coop, "product_id": product},
                   headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200 and "计划生产数量" in page.text and "6212210001" in page.text
