"""Campaigns on SQLite and PostgreSQL: discounts worked by hand that add up to the fen,
per-buyer limits (also under one buyer's concurrent checkouts on PostgreSQL), pre-sales
that succeed, and failed pre-sales that refund every pledge exactly once — also when
the close runs twice or dies half-way — and the HTTP API."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
from conftest import COUNTY, PW, VILLAGE_A, login
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from ecpa.campaigns import service
from ecpa.campaigns.models import PresaleSettlement
from ecpa.db import session_factory, session_scope, utcnow
from ecpa.errors import Conflict, InvalidInput, PermissionDenied
from ecpa.ledger.models import Transaction
from ecpa.ledger.service import balance
from ecpa.market import catalog, orders, payments
from ecpa.market.models import Order, Refund, Sku
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
COOP_MANAGER = Actor("coop", Role.COOPERATIVE_MANAGER, COUNTY)


def buyer(n: int | str) -> Actor:
    return Actor(f"buyer{n}", Role.CONSUMER)


@pytest.fixture
def shop(db_url, register_file):
    """As in test_market: a poor household's honey (seller not certified) and a certified
    cooperative's walnuts, both from village A of the county; plus a pre-sale SKU."""
    payments.reset_gateways()
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        h1, _h2, h3 = s.scalars(select(Household.id).order_by(Household.number)).all()
        org = Organisation(kind=OrganisationKind.COOPERATIVE, name="核桃合作社",
                           credit_code="93621221MA7K123451", region_code=COUNTY)
        s.add(org)
        s.flush()
        family = catalog.create_seller(s, OFFICER, kind="household", name="王家蜂蜜",
                                       region_code=VILLAGE_A, household_id=h1,
                                       manager_username="cadre")
        coop = catalog.create_seller(s, OFFICER, kind="cooperative", name="核桃合作社",
                                     region_code=COUNTY, organisation_id=org.id,
                                     manager_username="coop")
        catalog.link_household(s, COOP_MANAGER, coop.id, h3, "member")
        catalog.certify(s, OFFICER, coop.id, "members from poor households")
        honey = catalog.add_product(s, OFFICER, family.id, name="土蜂蜜", category="food",
                                    origin_code=VILLAGE_A)
        walnuts = catalog.add_product(s, COOP_MANAGER, coop.id, name="成县核桃",
                                      category="agricultural", origin_code=VILLAGE_A)
        honey_sku = catalog.add_sku(s, OFFICER, honey.id, code="HONEY-500", title="500 g jar",
                                    unit="jar", weight_g=600, price_fen=6_800, stock=20)
        walnut_sku = catalog.add_sku(s, COOP_MANAGER, walnuts.id, code="WAL-2500",
                                     title="2.5 kg bag", unit="bag", weight_g=2_600,
                                     price_fen=9_900, stock=50)
        # The pre-sale SKU: next autumn's harvest, at most 100 bags.
        presale_sku = catalog.add_sku(s, COOP_MANAGER, walnuts.id, code="WAL-PRE",
                                      title="2.5 kg bag, next harvest", unit="bag",
                                      weight_g=2_600, price_fen=8_800, stock=100)
        from ecpa.stations.service import set_zone
        for zone, fee in (("county_town", 800), ("township", 1_000), ("village", 1_200)):
            set_zone(s, OFFICER, COUNTY, zone, fee_fen=fee, days=3)
        return {"h1": h1, "h3": h3, "family": family.id, "coop": coop.id,
                "honey": honey_sku.id, "walnut": walnut_sku.id, "presale_sku": presale_sku.id}


def pay(db_url, actor, order_id):
    start = payments.start_payment(session_factory(db_url), actor, order_id)
    body, sig = payments.gateway_named("test").callback(start.reference, start.amount_fen)
    return start, payments.handle_callback(session_factory(db_url), "test", body, sig)


def campaign(db_url, **rules):
    now = utcnow()
    args = {"name": "消费扶贫日", "starts_at": now - timedelta(hours=1),
            "ends_at": now + timedelta(days=1), "counties": [COUNTY]}
    with session_scope(db_url) as s:
        return service.create_campaign(s, OFFICER, **{**args, **rules}).id


def check_totals(order: dict) -> None:
    assert order["items_fen"] - order["discount_fen"] + order["delivery_fee_fen"] == order["total_fen"]
    assert sum(x["discount_fen"] for x in order["lines"]) == order["discount_fen"]
    for x in order["lines"]:
        assert x["amount_fen"] == x["quantity"] * x["unit_price_fen"] - x["discount_fen"] >= 0


# --- campaign days --------------------------------------------------------------------

def test_spread_by_largest_remainder():
    assert service.spread(100, [1, 1, 1]) == [34, 33, 33]
    assert service.spread(3_000, [12_240, 8_910]) == [1_736, 1_264]
    assert service.spread(7, [0, 5, 0]) == [0, 7, 0]
    assert service.spread(0, [3, 4]) == [0, 0]


def test_campaign_discount_worked_by_hand(db_url, shop):
    # 10 % off, and 满 200 元 减 30 元 on the campaign items.
    cid = campaign(db_url, percent_off_bp=1_000, threshold_fen=20_000, threshold_off_fen=3_000)
    f = session_factory(db_url)
    order = orders.checkout(f, buyer(1), "c1", [orders.Item(shop["honey"], 2),
                                                orders.Item(shop["walnut"], 1)],
                            ship_to_code=VILLAGE_A, discount=service.discount_hook)
    # Honey 2 × 68.00 = 136.00, walnuts 99.00: 235.00 at list price, over the threshold.
    # 10 %: 13.60 and 9.90, leaving 122.40 and 89.10.  The 30.00 spread over those:
    # 3000 × 12240 / 21150 = 1736.17, 3000 × 8910 / 21150 = 1263.83: floors 1736 + 1263
    # leave 1 fen, which goes to the larger remainder (walnuts): 1736 and 1264.
    honey, walnut = order["lines"]
    assert (honey["discount_fen"], walnut["discount_fen"]) == (1_360 + 1_736, 990 + 1_264)
    assert order["discount_fen"] == 5_350 and order["items_fen"] == 23_500
    assert order["campaign_id"] == cid
    assert order["total_fen"] == 23_500 - 5_350 + order["delivery_fee_fen"]
    check_totals(order)
    # Under the threshold only the percentage applies.
    small = orders.checkout(f, buyer(1), "c2", [orders.Item(shop["honey"], 1)],
                            ship_to_code=VILLAGE_A, discount=service.discount_hook)
    assert small["discount_fen"] == 680
    check_totals(small)
    # The buyer pays the discounted total; the ledger holds exactly that, then pays the
    # sellers what the lines say.
    pay(db_url, buyer(1), order["id"])
    orders.ship(f, ADMIN, order["id"], "邮政", "EMS1")
    orders.complete(f, buyer(1), order["id"])
    with session_scope(db_url) as s:
        assert balance(s, orders.IN_TRANSIT) == 0
        assert balance(s, orders.gateway_account("test")) == order["total_fen"]
        assert balance(s, f"seller:{shop['coop']}") == -walnut["amount_fen"]


def test_which_campaign_applies_and_outside_the_window(db_url, shop):
    f = session_factory(db_url)
    everyone = campaign(db_url, name="all sellers", percent_off_bp=1_000)
    linked = campaign(db_url, name="poverty-linked only", percent_off_bp=2_000,
                      poverty_linked_only=True)
    # Honey (seller not certified) and walnuts: 10 % of both (2350) beats 20 % of the
    # walnuts alone (1980).
    both = orders.checkout(f, buyer(1), "a", [orders.Item(shop["honey"], 2),
                                              orders.Item(shop["walnut"], 1)],
                           ship_to_code=COUNTY, discount=service.discount_hook)
    assert (both["campaign_id"], both["discount_fen"]) == (everyone, 2_350)
    assert [x["discount_fen"] for x in both["lines"]] == [1_360, 990]
    alone = orders.checkout(f, buyer(1), "b", [orders.Item(shop["walnut"], 1)],
                            ship_to_code=COUNTY, discount=service.discount_hook)
    assert (alone["campaign_id"], alone["discount_fen"]) == (linked, 1_980)
    later = orders.checkout(f, buyer(1), "c", [orders.Item(shop["walnut"], 1)], ship_to_code=COUNTY,
                            now=utcnow() + timedelta(days=2), discount=service.discount_hook)
    assert (later["campaign_id"], later["discount_fen"]) == (None, 0)
    for o in (both, alone, later):
        check_totals(o)
    with session_scope(db_url) as s:
        assert [c["id"] for c in service.list_campaigns(s, OFFICER, utcnow())] == [everyone, linked]
        with pytest.raises(PermissionDenied):
            service.list_campaigns(s, buyer(1))


def test_campaign_input_is_checked(db_url, shop):
    now = utcnow()
    ok = {"name": "x", "starts_at": now, "ends_at": now + timedelta(days=1), "counties": [COUNTY]}
    with session_scope(db_url) as s:
        with pytest.raises(PermissionDenied):
            service.create_campaign(s, buyer(1), **ok)
        with pytest.raises(PermissionDenied):
            service.create_campaign(s, Actor("o2", Role.COUNTY_OFFICER, "620102"),
                                    **ok)  # another county's officer
        for bad, field in (({"ends_at": now}, "ends_at"), ({"counties": [VILLAGE_A]}, "counties.0"),
                           ({"counties": []}, "counties"), ({"percent_off_bp": 10_000}, "percent_off_bp"),
                           ({"percent_off_bp": 0.5}, "percent_off_bp"),
                           ({"threshold_off_fen": 500}, "threshold_fen"),
                           ({"threshold_fen": 1_000, "threshold_off_fen": 1_000}, "threshold_off_fen"),
                           ({"per_buyer_limit": 0}, "per_buyer_limit")):
            with pytest.raises(InvalidInput) as e:
                service.create_campaign(s, OFFICER, **{**ok, **bad})
            assert e.value.detail["field"] == field


def test_per_buyer_limit(db_url, shop):
    cid = campaign(db_url, percent_off_bp=500, per_buyer_limit=3)
    f = session_factory(db_url)

    def buy(who, key, qty, sku="walnut"):
        return orders.checkout(f, who, key, [orders.Item(shop[sku], qty)], ship_to_code=COUNTY,
                               discount=service.discount_hook)

    first = buy(buyer(1), "a", 2)
    assert first["campaign_id"] == cid
    with pytest.raises(Conflict, match=r"WAL-2500: at most 3 per buyer.*you have 2, asked 2") as e:
        buy(buyer(1), "b", 2)
    assert e.value.detail["limit"] == 3 and e.value.detail["sku_id"] == shop["walnut"]
    buy(buyer(1), "c", 1)
    with pytest.raises(Conflict, match="at most 3"):
        buy(buyer(1), "d", 1)
    buy(buyer(1), "e", 3, "honey")  # per SKU
    buy(buyer(2), "a", 3)  # per buyer
    # A cancelled order no longer counts.
    orders.cancel(f, buyer(1), first["id"])
    buy(buyer(1), "f", 2)
    with session_scope(db_url) as s:
        assert s.get(Sku, shop["walnut"]).stock == 50 - 3 - 3


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_one_buyers_concurrent_checkouts_keep_the_limit(db_url, shop):
    campaign(db_url, percent_off_bp=500, per_buyer_limit=3)
    f = session_factory(db_url)
    barrier = threading.Barrier(20)

    def one(n: int) -> str:
        sku = "walnut" if n % 2 else "honey"
        barrier.wait()
        try:
            orders.checkout(f, buyer(1), f"k{n}", [orders.Item(shop[sku], 1)], ship_to_code=COUNTY,
                            discount=service.discount_hook)
        except Conflict as e:
            assert "at most 3" in e.message
            return "refused"
        return sku

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(one, range(20)))
    assert outcomes.count("walnut") == 3 and outcomes.count("honey") == 3
    with session_scope(db_url) as s:
        assert s.get(Sku, shop["walnut"]).stock == 47 and s.get(Sku, shop["honey"]).stock == 17
        assert s.scalar(select(func.count()).select_from(Order)) == 6


# --- pre-sales ------------------------------------------------------------------------

T0 = utcnow().replace(microsecond=0) + timedelta(days=1)  # the pre-sale opens tomorrow


def presale(db_url, shop, target: int) -> int:
    with session_scope(db_url) as s:
        return service.create_presale(s, COOP_MANAGER, sku_id=shop["presale_sku"],
                                      target_units=target, opens_at=T0,
                                      deadline=T0 + timedelta(days=7),
                                      delivery_date=date(2099, 10, 1), now=T0).id


def pledge_and_pay(db_url, pid: int, quantities: list[int], unpaid: int = 0) -> list[dict]:
    f = session_factory(db_url)
    paid = []
    for n, qty in enumerate(quantities):
        order = service.pledge(f, buyer(n), pid, "p", qty, ship_to_code=VILLAGE_A,
                               now=T0 + timedelta(hours=n + 1))
        _, result = pay(db_url, buyer(n), order["id"])
        assert result["outcome"] == "captured"
        paid.append(result["order"])
    for n in range(unpaid):
        service.pledge(f, buyer(f"u{n}"), pid, "p", 1, ship_to_code=VILLAGE_A,
                       now=T0 + timedelta(days=6, hours=23, minutes=50))
    return paid


def test_a_presale_that_reaches_its_target(db_url, shop):
    pid = presale(db_url, shop, target=5)
    f = session_factory(db_url)
    with pytest.raises(Conflict, match="takes pledges from"):  # not open yet
        service.pledge(f, buyer(9), pid, "early", 1, ship_to_code=COUNTY, now=T0 - timedelta(hours=1))
    paid = pledge_and_pay(db_url, pid, [2, 2, 1], unpaid=1)
    # The same pledge again is the same order.
    again = service.pledge(f, buyer(0), pid, "p", 2, ship_to_code=VILLAGE_A, now=T0 + timedelta(hours=1))
    assert again["id"] == paid[0]["id"]
    with pytest.raises(Conflict, match="alone"):
        orders.checkout(f, buyer(9), "mixed", [orders.Item(shop["presale_sku"], 1),
                                               orders.Item(shop["honey"], 1)],
                        ship_to_code=COUNTY, now=T0 + timedelta(hours=2), discount=service.discount_hook)
    with session_scope(db_url) as s:
        p = service.progress(s, pid, now=T0 + timedelta(days=1))
    assert (p["pledged_units"], p["paid_units"], p["share_bp"], p["percent"]) == (6, 5, 10_000, 100)
    assert p["seconds_left"] == 6 * 24 * 3600 and p["state"] == "open"
    with pytest.raises(Conflict, match="closes at its deadline"):
        service.close_presale(f, COOP_MANAGER, pid, now=T0 + timedelta(days=6))
    with pytest.raises(PermissionDenied):
        service.close_presale(f, buyer(0), pid, now=T0 + timedelta(days=8))
    done = service.close_presale(f, COOP_MANAGER, pid, now=T0 + timedelta(days=8))
    assert done["state"] == "succeeded" and done["paid_units_at_close"] == 5
    assert done["settlement"] == {"kept": {"orders": 3, "refunded_fen": 0},
                                  "cancelled": {"orders": 1, "refunded_fen": 0}}
    assert service.close_presale(f, OFFICER, pid, now=T0 + timedelta(days=9)) == {
        **done, "seconds_left": 0}
    with pytest.raises(Conflict, match="takes pledges"):  # closed
        service.pledge(f, buyer(9), pid, "late", 1, ship_to_code=COUNTY, now=T0 + timedelta(days=8))
    with session_scope(db_url) as s:
        assert s.get(Sku, shop["presale_sku"]).stock == 95  # the unpaid pledge's bag went back
        states = sorted(o.state.value for o in s.scalars(select(Order)))
        assert states == ["cancelled", "paid", "paid", "paid"]
        assert balance(s, orders.IN_TRANSIT) == -sum(o["total_fen"] for o in paid)
        assert s.scalar(select(func.count()).select_from(Refund)) == 0
    # When the harvest comes the pledges ship like any order.
    assert orders.ship(f, COOP_MANAGER, paid[0]["id"], "邮政", "EMS9")["state"] == "shipped"


def _refunds_exactly_once(db_url, paid: list[dict], pid: int) -> None:
    with session_scope(db_url) as s:
        refunds = s.scalars(select(Refund).where(Refund.key.like(f"presale:{pid}:%"))).all()
        assert sorted(r.order_id for r in refunds) == sorted(o["id"] for o in paid)
        assert s.scalar(select(func.count()).select_from(Refund)) == len(paid)
        assert s.scalar(select(func.count()).select_from(Transaction)
                        .where(Transaction.key.like("market:refund:%"))) == len(paid)
        for o in paid:
            order = s.get(Order, o["id"])
            assert order.state.value == "cancelled" and order.refunded_fen == order.total_fen
        assert balance(s, orders.IN_TRANSIT) == 0
        assert balance(s, orders.gateway_account("test")) == 0
        assert s.get(Sku, paid[0]["lines"][0]["sku_id"]).stock == 100
        assert s.scalar(select(func.count()).select_from(PresaleSettlement)) == len(paid) + 1
    gateway_refunds = payments.gateway_named("test").refunds
    assert len(gateway_refunds) == len(paid) == len({ref for ref, _ in gateway_refunds})
    assert sorted(fen for _, fen in gateway_refunds) == sorted(o["total_fen"] for o in paid)


def test_a_failed_presale_refunds_every_pledge_once_when_closed_twice(db_url, shop):
    pid = presale(db_url, shop, target=10)
    f = session_factory(db_url)
    paid = pledge_and_pay(db_url, pid, [1, 2, 1, 3], unpaid=1)
    after = T0 + timedelta(days=7)
    first = service.close_presale(f, OFFICER, pid, now=after)
    assert first["state"] == "failed" and first["paid_units_at_close"] == 7
    assert first["settlement"]["refunded"] == {"orders": 4,
                                               "refunded_fen": sum(o["total_fen"] for o in paid)}
    assert first["settlement"]["cancelled"]["orders"] == 1
    again = service.close_presale(f, OFFICER, pid, now=after)
    assert again["state"] == "failed" and again["settlement"] == first["settlement"]
    _refunds_exactly_once(db_url, paid, pid)


def test_a_failed_presale_close_killed_half_way_finishes_on_the_rerun(db_url, shop, monkeypatch):
    pid = presale(db_url, shop, target=20)
    f = session_factory(db_url)
    paid = pledge_and_pay(db_url, pid, [2, 1, 4, 1, 2], unpaid=1)
    real, calls = orders.refund, []

    def dies_at_the_third(*args, **kwargs):
        calls.append(args[2])
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(orders, "refund", dies_at_the_third)
    with pytest.raises(RuntimeError, match="killed"):
        service.close_presale(f, COOP_MANAGER, pid, now=T0 + timedelta(days=7))
    with session_scope(db_url) as s:
        assert service.progress(s, pid)["state"] == "refunding"
        assert s.scalar(select(func.count()).select_from(Refund)) == 2
    monkeypatch.setattr(orders, "refund", real)
    done = service.close_presale(f, COOP_MANAGER, pid, now=T0 + timedelta(days=10))
    assert done["state"] == "failed" and done["paid_units_at_close"] == 10
    assert done["closed_at"] == (T0 + timedelta(days=7)).isoformat()  # decided once
    service.close_presale(f, COOP_MANAGER, pid)
    _refunds_exactly_once(db_url, paid, pid)


def test_a_pledge_expired_before_the_close_and_paid_after_it_goes_straight_back(db_url, shop):
    pid = presale(db_url, shop, target=5)
    f = session_factory(db_url)
    order = service.pledge(f, buyer(1), pid, "p", 2, ship_to_code=COUNTY, now=T0 + timedelta(hours=1))
    start = payments.start_payment(f, buyer(1), order["id"])
    assert orders.release_expired(f, T0 + timedelta(hours=2)) == 1
    assert service.close_presale(f, ADMIN, pid, now=T0 + timedelta(days=7))["state"] == "failed"
    body, sig = payments.gateway_named("test").callback(start.reference, start.amount_fen)
    assert payments.handle_callback(f, "test", body, sig)["outcome"] == "refunded_cancelled"
    with session_scope(db_url) as s:
        assert balance(s, orders.IN_TRANSIT) == 0 and s.get(Sku, shop["presale_sku"]).stock == 100


def test_presale_input_is_checked(db_url, shop):
    with session_scope(db_url) as s:
        ok = {"sku_id": shop["presale_sku"], "target_units": 10,
              "deadline": T0 + timedelta(days=3), "delivery_date": date(2099, 1, 1), "now": T0}
        with pytest.raises(PermissionDenied):
            service.create_presale(s, Actor("cadre", Role.VILLAGE_CADRE, VILLAGE_A), **ok)
        for bad, field in (({"sku_id": 999_999}, "sku_id"), ({"target_units": 101}, "target_units"),
                           ({"target_units": "ten"}, "target_units"),
                           ({"deadline": T0 - timedelta(days=1)}, "deadline"),
                           ({"delivery_date": date(2000, 1, 1)}, "delivery_date")):
            with pytest.raises(InvalidInput) as e:
                service.create_presale(s, COOP_MANAGER, **{**ok, **bad})
            assert e.value.detail["field"] == field
        service.create_presale(s, OFFICER, **ok)
        with pytest.raises(Conflict, match="already has a pre-sale"):
            service.create_presale(s, COOP_MANAGER, **ok)


# --- the HTTP API ---------------------------------------------------------------------

@pytest.fixture
def api(db_url, shop):
    from ecpa.api.app import create_app
    from ecpa.people.service import create_user
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ADMIN, "coop", PW, Role.COOPERATIVE_MANAGER, COUNTY)
        create_user(s, ADMIN, "buyer", PW, Role.CONSUMER)
    return TestClient(create_app())


def test_api_roles_progress_and_bad_requests(api, shop):
    officer, coop, consumer = login(api, "officer"), login(api, "coop"), login(api, "buyer")
    now = utcnow()
    body = {"name": "消费扶贫日", "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat() + "Z", "counties": [COUNTY],
            "percent_off_bp": 1_000, "per_buyer_limit": 5}
    assert api.post("/api/campaigns", json=body, headers=consumer).status_code == 403
    assert api.post("/api/campaigns", json=body).status_code == 401
    r = api.post("/api/campaigns", json=body, headers=officer)
    assert r.status_code == 201, r.text
    assert api.get("/api/campaigns", headers=consumer).status_code == 403
    assert [c["name"] for c in api.get("/api/campaigns", headers=officer).json()] == ["消费扶贫日"]
    for bad, field in (({"percent_off_bp": "ten"}, "percent_off_bp"),
                       ({"counties": ["999999"]}, "counties.0"),
                       ({"starts_at": "tomorrow"}, "starts_at"),
                       ({"threshold_off_fen": 100}, "threshold_fen"),
                       ({"threshold_fen": 10**20, "threshold_off_fen": 1}, "threshold_fen")):
        r = api.post("/api/campaigns", json={**body, **bad}, headers=officer)
        assert r.status_code == 422 and field in r.text, r.text
    # The marketplace's checkout applies the campaign.
    r = api.post("/api/market/checkout", headers=consumer, json={
        "key": "k1", "items": [{"sku_id": shop["honey"], "quantity": 1}], "ship_to_code": COUNTY})
    assert r.status_code == 201 and r.json()["discount_fen"] == 680, r.text

    pre = {"sku_id": shop["presale_sku"], "target_units": 10,
           "deadline": (now + timedelta(days=7)).isoformat(), "delivery_date": "2099-10-01"}
    assert api.post("/api/campaigns/presales", json=pre, headers=consumer).status_code == 403
    r = api.post("/api/campaigns/presales", json={**pre, "target_units": 0}, headers=coop)
    assert r.status_code == 422 and "target_units" in r.text
    r = api.post("/api/campaigns/presales", json={k: v for k, v in pre.items() if k != "deadline"},
                 headers=coop)
    assert r.status_code == 422 and "deadline" in r.text
    r = api.post("/api/campaigns/presales", json={**pre, "sku_id": 2**40}, headers=coop)
    assert r.status_code == 422 and "sku_id" in r.text
    r = api.post("/api/campaigns/presales", json={**pre, "target_units": 1_000}, headers=coop)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "target_units"
    r = api.post("/api/campaigns/presales", json=pre, headers=coop)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]

    pledge = {"key": "p1", "quantity": 3, "ship_to_code": COUNTY}
    assert api.post(f"/api/campaigns/presales/{pid}/pledges", json=pledge).status_code == 401
    r = api.post(f"/api/campaigns/presales/{pid}/pledges", json={**pledge, "quantity": 0},
                 headers=consumer)
    assert r.status_code == 422 and "quantity" in r.text
    r = api.post(f"/api/campaigns/presales/{pid}/pledges", json=pledge, headers=consumer)
    assert r.status_code == 201, r.text
    order = r.json()
    r = api.post(f"/api/market/orders/{order['id']}/payments", headers=consumer)
    r = api.post(f"/api/market/test-gateway/{r.json()['reference']}/pay", headers=consumer)
    assert r.json()["outcome"] == "captured"

    progress = api.get(f"/api/campaigns/presales/{pid}")  # no sign-in
    assert progress.status_code == 200
    p = progress.json()
    assert (p["paid_units"], p["pledged_units"], p["target_units"], p["percent"]) == (3, 3, 10, 30)
    assert 0 < p["seconds_left"] <= 7 * 24 * 3600 and p["state"] == "open"
    assert api.get("/api/campaigns/presales/999999").status_code == 404
    assert api.get("/api/campaigns/presales/abc").status_code == 422
    assert api.get(f"/api/campaigns/presales/{2**40}").status_code == 422
    assert api.post(f"/api/campaigns/presales/{pid}/close", headers=consumer).status_code == 403
    r = api.post(f"/api/campaigns/presales/{pid}/close", headers=coop)
    assert r.status_code == 409 and "deadline" in r.json()["message"]
