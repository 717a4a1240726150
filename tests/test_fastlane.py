"""The checkout's fast lane (market/fastlane.py) on PostgreSQL, through HTTP with the
application's lifespan running: the order it places is the one the ordinary route
places and the one read back; whatever it cannot answer goes the ordinary way with the
ordinary answer (Idempotency-Key, the cart, a price changed behind its back, short
stock, a pre-sale SKU, a per-buyer limit, a repeated checkout key); and many
concurrent buyers through it never oversell."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import COUNTY, PW, VILLAGE_A, login
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from test_campaigns import ADMIN, campaign, check_totals, presale, shop  # noqa: F401

from ecpa.db import session_scope
from ecpa.market.models import Order, OrderLine, Sku
from ecpa.people.models import Role
from ecpa.people.service import create_user

pytestmark = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)

# What differs between two equal orders of two buyers.
OWN = {"id", "buyer", "checkout_key", "created_at", "reserved_until", "paid_at"}


@pytest.fixture
def client(db_url, shop):  # noqa: F811
    from ecpa.api.app import create_app
    with session_scope(db_url) as s:
        for name in ("alice", "bob"):
            create_user(s, ADMIN, name, PW, Role.CONSUMER)
    with TestClient(create_app()) as c:  # runs the lifespan: the lane opens
        assert "checkout" in c.app.state.lanes
        yield c


def lane(client):
    return client.app.state.lanes["checkout"]


def signed_in(client, user: str) -> dict:
    """A buyer's header, its token already checked once (the lane only serves tokens
    the server has checked and kept)."""
    headers = login(client, user)
    assert client.get("/api/market/cart", headers=headers).status_code == 200
    return headers


def buy(client, headers, key, items, ship_to=VILLAGE_A):
    return client.post("/api/market/checkout", headers=headers, json={
        "key": key, "items": [{"sku_id": s, "quantity": q} for s, q in items],
        "ship_to_code": ship_to, "address": "东关村三组", "contact_name": "李"})


def comparable(order: dict) -> dict:
    return {k: v for k, v in order.items() if k not in OWN} | {
        "lines": [{k: v for k, v in line.items() if k != "id"} for line in order["lines"]]}


def stock(sku_id: int) -> int:
    with session_scope() as s:
        return s.get(Sku, sku_id).stock


def test_the_lane_places_the_order_the_ordinary_route_places(client, shop):  # noqa: F811
    campaign(None, percent_off_bp=1_000)  # 10 % off in the county, no per-buyer limit
    alice, bob = signed_in(client, "alice"), signed_in(client, "bob")
    items = [(shop["walnut"], 3), (shop["honey"], 2)]
    fast = buy(client, alice, "a-1", items)
    assert fast.status_code == 201, fast.text
    assert lane(client).outcomes["placed"] == 1
    fast = fast.json()
    check_totals(fast)
    assert fast["discount_fen"] > 0 and fast["campaign_id"] is not None
    assert fast["delivery_fee_fen"] >= 1_200  # the village zone, plus weight over the base
    # The cooperative's walnuts name its member from a poor household.
    by_sku = {line["sku_id"]: line for line in fast["lines"]}
    assert by_sku[shop["walnut"]]["households"] == [shop["h3"]]
    # What the lane answered is what is stored.
    stored = client.get(f"/api/market/orders/{fast['id']}", headers=alice).json()
    assert comparable(stored) == comparable(fast) and stored["id"] == fast["id"]

    kept = client.app.state.lanes.pop("checkout")  # the ordinary route alone
    try:
        ordinary = buy(client, bob, "b-1", items)
    finally:
        client.app.state.lanes["checkout"] = kept
    assert ordinary.status_code == 201, ordinary.text
    assert kept.outcomes["placed"] == 1
    assert comparable(ordinary.json()) == comparable(fast)
    assert stock(shop["walnut"]) == 50 - 6 and stock(shop["honey"]) == 20 - 4


def test_what_the_lane_cannot_answer_goes_the_ordinary_way(client, shop):  # noqa: F811
    alice = signed_in(client, "alice")
    counts = lane(client).outcomes

    # With an Idempotency-Key header the ordinary route answers (and replays).
    first = client.post("/api/market/checkout", headers=alice | {"Idempotency-Key": "i1"}, json={
        "key": "k-idem", "items": [{"sku_id": shop["walnut"], "quantity": 1}],
        "ship_to_code": COUNTY})
    again = client.post("/api/market/checkout", headers=alice | {"Idempotency-Key": "i1"}, json={
        "key": "k-idem", "items": [{"sku_id": shop["walnut"], "quantity": 1}],
        "ship_to_code": COUNTY})
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true" and not counts

    # The cart: the ordinary route.
    assert client.put("/api/market/cart", headers=alice,
                      json={"sku_id": shop["honey"], "quantity": 1}).status_code == 200
    cart = client.post("/api/market/checkout", headers=alice,
                       json={"key": "k-cart", "ship_to_code": COUNTY})
    assert cart.status_code == 201 and not counts

    # Not signed in: the ordinary route's 401.
    assert buy(client, {}, "k-anon", [(shop["walnut"], 1)]).status_code == 401 and not counts

    # Placed by the lane, then the same checkout key again: the same order.
    placed = buy(client, alice, "k-1", [(shop["walnut"], 1)])
    assert placed.status_code == 201 and counts["placed"] == 1
    repeat = buy(client, alice, "k-1", [(shop["walnut"], 1)])
    assert repeat.status_code == 201 and repeat.json()["id"] == placed.json()["id"]
    assert counts["UniqueViolation"] == 1 and stock(shop["walnut"]) == 50 - 2

    # The price changed by another server (this process's copy is not told): the lane
    # refuses under the lock, the ordinary route charges the new price.
    with session_scope() as s:
        s.execute(text("UPDATE market_sku SET price_fen = 10500 WHERE id = :id"),
                  {"id": shop["walnut"]})
    dearer = buy(client, alice, "k-2", [(shop["walnut"], 1)])
    assert dearer.status_code == 201 and dearer.json()["lines"][0]["unit_price_fen"] == 10_500
    assert counts["refused"] == 1 and counts["placed"] == 1

    # Short of stock: refused by the lane, the ordinary route's 409 names what is left.
    short = buy(client, alice, "k-3", [(shop["honey"], 25)])
    assert short.status_code == 409 and "left" in short.json()["message"]
    assert counts["refused"] == 2

    # An unknown SKU: the ordinary route's 422 names it.
    unknown = buy(client, alice, "k-4", [(999_999, 1)])
    assert unknown.status_code == 422 and "999999" in unknown.json()["message"]

    # A pre-sale's SKU is sold by pledges only: the lane refuses, the ordinary route says no.
    presale(None, shop, 10)
    on_presale = buy(client, alice, "k-5", [(shop["presale_sku"], 1)])
    assert on_presale.status_code in (409, 422) and counts["refused"] == 3

    # A campaign with a per-buyer limit: the buyer's orders in it are counted the
    # ordinary way, which enforces it.
    campaign(None, percent_off_bp=500, per_buyer_limit=2)
    within = buy(client, alice, "k-6", [(shop["honey"], 2)])
    assert within.status_code == 201, within.text
    over = buy(client, alice, "k-7", [(shop["honey"], 1)])
    assert over.status_code == 409 and "at most 2" in over.json()["message"]
    assert counts["per-buyer limit"] == 2 and counts["placed"] == 1

    with session_scope() as s:
        # Nothing half-written by a refusal: every order has its lines, stock adds up.
        assert s.scalar(select(func.count()).select_from(Order).where(
            ~Order.id.in_(select(OrderLine.order_id)))) == 0
        sold = dict(s.execute(select(OrderLine.sku_id, func.sum(OrderLine.quantity))
                              .group_by(OrderLine.sku_id)).all())
    assert stock(shop["walnut"]) == 50 - sold[shop["walnut"]]
    assert stock(shop["honey"]) == 20 - sold[shop["honey"]]


def test_many_buyers_at_once_through_the_lane_never_oversell(client, shop):  # noqa: F811
    alice = signed_in(client, "alice")

    def one(n: int) -> int:
        return buy(client, alice, f"rush-{n}", [(shop["walnut"], 1)]).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(one, range(200)))
    assert codes.count(201) == 50 and codes.count(409) == 150
    assert stock(shop["walnut"]) == 0
    with session_scope() as s:
        assert s.scalar(select(func.sum(OrderLine.quantity))
                        .where(OrderLine.sku_id == shop["walnut"])) == 50
        assert s.scalar(select(func.count()).select_from(Order)) == 50
    assert lane(client).outcomes["placed"] >= 25  # most of the sales went through the lane


def test_the_lane_keeps_one_plan_and_may_answer_before_the_flush(db_url):
    """Its connections keep one plan of the statement; with ``wait_for_flush`` off (an
    operator's choice, docs/marketplace.md) their commits do not wait for the disk,
    while every other connection's do."""
    import asyncio

    from ecpa.market.fastlane import FastLane

    async def settings_of(lane: FastLane) -> tuple:
        await lane.open()
        try:
            async with lane.pool.connection() as conn:
                cur = await conn.execute("SELECT current_setting('plan_cache_mode'), "
                                         "current_setting('synchronous_commit')")
                return await cur.fetchone()
        finally:
            await lane.close()

    assert asyncio.run(settings_of(FastLane(db_url, 1))) == ("force_generic_plan", "on")
    assert asyncio.run(settings_of(FastLane(db_url, 1, wait_for_flush=False))) == (
        "force_generic_plan", "off")
    with session_scope() as s:
        assert s.scalar(text("SELECT current_setting('synchronous_commit')")) == "on"


def test_the_lanes_kept_plan_finds_every_sku_by_key(db_url, shop, monkeypatch):  # noqa: F811
    """The plan a lane connection keeps for its statement reads market_sku through its
    primary key, never by scanning the table: a scan planned while the table is one
    page would be kept after the table grows or fills with dead versions of hot rows."""
    from ecpa.api.app import create_app
    from ecpa.config import reset_settings

    monkeypatch.setenv("ECPA_CHECKOUT_LANE_CONNECTIONS", "1")  # the one that prepared it
    reset_settings()
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "alice", PW, Role.CONSUMER)

    async def kept_plan(pool) -> str:
        async with pool.connection() as conn:
            cur = await conn.execute(
                "SELECT name, cardinality(parameter_types) FROM pg_prepared_statements "
                "WHERE statement LIKE '%%locked AS MATERIALIZED%%'")
            name, n = await cur.fetchone()
            # Generic plan: the parameters' values play no part, so NULLs will do;
            # EXPLAIN without ANALYZE runs nothing.
            cur = await conn.execute(f"EXPLAIN EXECUTE {name}({', '.join(['NULL'] * n)})")
            return "\n".join(r[0] for r in await cur.fetchall())

    try:
        with TestClient(create_app()) as c:
            alice = signed_in(c, "alice")
            r = buy(c, alice, "by-key", [(shop["walnut"], 1), (shop["honey"], 2)])
            assert r.status_code == 201, r.text
            assert lane(c).outcomes["placed"] == 1
            plan = c.portal.call(kept_plan, lane(c).pool)
    finally:
        monkeypatch.delenv("ECPA_CHECKOUT_LANE_CONNECTIONS")
        reset_settings()
    assert "Seq Scan on market_sku" not in plan
    # Both the locking read and the stock update look SKUs up by id (an index scan or
    # a bitmap of the same index, as the planner likes).
    assert plan.count("Scan using pk_market_sku") + plan.count("Scan on pk_market_sku") == 2, plan
