"""What the fast checkout path keeps in memory, and that it stays correct: checked API
tokens (a disabled account is refused once its entry expires, at once with the cache
off), delivery routes and campaigns (a change made in this process applies to the next
checkout; one made elsewhere after ``reference_cache_seconds``), and routers that turn
away paths outside their routes without losing any route."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from conftest import COUNTY, PW, VILLAGE_A, login
from ecpa.db import session_factory, session_scope
from ecpa.market import catalog, orders
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role, User
from ecpa.people.service import create_user
from ecpa.stations.models import DeliveryZone
from ecpa.stations.service import set_zone

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
BUYER = Actor("alice", Role.CONSUMER)


@pytest.fixture
def shop(db_url):
    """A county with delivery zones and one SKU of an enterprise seller."""
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "alice", PW, Role.CONSUMER)
        for zone, fee in (("county_town", 800), ("township", 1_000), ("village", 1_200)):
            set_zone(s, OFFICER, COUNTY, zone, fee_fen=fee, days=3)
        seller = catalog.create_seller(s, OFFICER, kind="enterprise", name="农资店", region_code=COUNTY)
        product = catalog.add_product(s, OFFICER, seller.id, name="化肥", category="means_of_production",
                                      origin_code=COUNTY)
        sku = catalog.add_sku(s, OFFICER, product.id, code="F-1", title="50 kg", unit="bag",
                              weight_g=900, price_fen=10_000, stock=100)
        return sku.id


def _buy(sku_id: int, key: str) -> dict:
    return orders.checkout(session_factory(), BUYER, key, [orders.Item(sku_id, 1)],
                           ship_to_code=VILLAGE_A)


def test_a_zone_changed_here_applies_to_the_next_checkout(shop, db_url):
    assert _buy(shop, "k1")["delivery_fee_fen"] == 1_200
    with session_scope(db_url) as s:
        set_zone(s, OFFICER, COUNTY, "village", fee_fen=1_500, days=4)
    order = _buy(shop, "k2")
    assert (order["delivery_fee_fen"], order["delivery_days"]) == (1_500, 4)
    assert order["total_fen"] == 10_000 + 1_500


def test_a_zone_changed_elsewhere_applies_after_the_cache_time(shop, db_url, monkeypatch):
    from ecpa import refcache
    clock = [1_000.0]
    monkeypatch.setattr(refcache.time, "monotonic", lambda: clock[0])
    assert _buy(shop, "k1")["delivery_fee_fen"] == 1_200
    # Another process's change: a plain UPDATE, no flush of this process sees it.
    with session_scope(db_url) as s:
        s.execute(update(DeliveryZone).where(DeliveryZone.zone == "village").values(fee_fen=2_000))
    assert _buy(shop, "k2")["delivery_fee_fen"] == 1_200  # still the kept route
    clock[0] += 5.01  # reference_cache_seconds (5) later
    assert _buy(shop, "k3")["delivery_fee_fen"] == 2_000


def test_with_the_reference_cache_off_every_checkout_reads_the_zone(shop, db_url, monkeypatch):
    from ecpa.config import reset_settings
    monkeypatch.setenv("ECPA_REFERENCE_CACHE_SECONDS", "0")
    reset_settings()
    assert _buy(shop, "k1")["delivery_fee_fen"] == 1_200
    with session_scope(db_url) as s:
        s.execute(update(DeliveryZone).where(DeliveryZone.zone == "village").values(fee_fen=2_000))
    assert _buy(shop, "k2")["delivery_fee_fen"] == 2_000


def test_a_campaign_created_here_discounts_the_next_checkout(shop, db_url):
    from datetime import timedelta

    from ecpa.campaigns.service import create_campaign, discount_hook
    from ecpa.db import utcnow
    now = utcnow()
    first = orders.checkout(session_factory(), BUYER, "k1", [orders.Item(shop, 1)],
                            ship_to_code=VILLAGE_A, discount=discount_hook, now=now)
    assert first["discount_fen"] == 0 and first["campaign_id"] is None
    with session_scope(db_url) as s:
        c = create_campaign(s, OFFICER, name="消费扶贫日", starts_at=now - timedelta(hours=1),
                            ends_at=now + timedelta(hours=1), counties=[COUNTY],
                            percent_off_bp=1_000)
        cid = c.id
    second = orders.checkout(session_factory(), BUYER, "k2", [orders.Item(shop, 1)],
                             ship_to_code=VILLAGE_A, discount=discount_hook, now=now)
    assert (second["discount_fen"], second["campaign_id"]) == (1_000, cid)
    # Outside the campaign's window the same kept campaign gives nothing off.
    later = orders.checkout(session_factory(), BUYER, "k3", [orders.Item(shop, 1)],
                            ship_to_code=VILLAGE_A, discount=discount_hook,
                            now=now + timedelta(hours=2))
    assert later["discount_fen"] == 0


@pytest.fixture
def client(db_url):
    from ecpa.api import deps
    from ecpa.api.app import create_app
    deps.tokens.clear()
    with session_scope(db_url) as s:
        create_user(s, ADMIN, "alice", PW, Role.CONSUMER)
    yield TestClient(create_app())
    deps.tokens.clear()


def test_a_disabled_account_is_refused_once_its_token_leaves_the_cache(client, db_url):
    from ecpa.api import deps
    alice = login(client, "alice")
    assert client.get("/api/market/cart", headers=alice).status_code == 200
    with session_scope(db_url) as s:
        s.scalar(select(User).where(User.username == "alice")).active = False
    # Kept for at most token_cache_seconds: still answered from memory…
    assert client.get("/api/market/cart", headers=alice).status_code == 200
    deps.tokens.clear()  # …until the entry expires
    refused = client.get("/api/market/cart", headers=alice)
    assert refused.status_code == 401 and "disabled" in refused.json()["message"]


def test_with_the_token_cache_off_a_disabled_account_is_refused_at_once(client, db_url, monkeypatch):
    from ecpa.config import reset_settings
    monkeypatch.setenv("ECPA_TOKEN_CACHE_SECONDS", "0")
    reset_settings()
    alice = login(client, "alice")
    assert client.get("/api/market/cart", headers=alice).status_code == 200
    with session_scope(db_url) as s:
        s.scalar(select(User).where(User.username == "alice")).active = False
    assert client.get("/api/market/cart", headers=alice).status_code == 401


def test_routers_turn_away_other_paths_but_find_their_own(client):
    from ecpa.api.routing import ApiRouter
    from ecpa.market.api import router
    assert isinstance(router, ApiRouter)
    alice = login(client, "alice")
    # Paths with parameters, in routers whose prefix is shared ("/api"): still found.
    missing = client.get("/api/market/orders/999999", headers=alice)
    assert missing.status_code == 404 and missing.json()["message"] == "no order 999999"
    assert client.get("/api/regions/620000", headers=alice).json()["code"] == "620000"
    assert client.get("/api/households/1", headers=alice).status_code == 403  # found, not hers
    assert client.get("/api/households/1/members", headers=alice).status_code == 405  # POST only
    assert client.get("/api/no-such-thing").json() == {"detail": "Not Found"}
    assert client.post("/api/market/checkout", headers=alice, json={}).status_code == 422
    # A web page (routers without a prefix, tried after the API's).
    assert client.get("/").status_code == 200
