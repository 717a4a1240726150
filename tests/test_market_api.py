"""The marketplace through HTTP: a consumer finds walnuts, fills a cart, checks out, pays
through the test gateway and confirms receipt; the seller ships; a return for quality is
refunded; the Idempotency-Key
header replays, refuses a different request, and answers 409 while the first runs."""

from __future__ import annotations

import pytest
from conftest import COUNTY, PW, VILLAGE_A, login
from fastapi.testclient import TestClient
from sqlalchemy import select

from ecpa.db import session_scope
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind

ADMIN = system_actor("test")


@pytest.fixture
def api(db_url, register_file):
    from ecpa.api.app import create_app
    from ecpa.market import payments
    from ecpa.stations.service import set_zone
    payments.reset_gateways()
    officer = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        for name, role, region in (("officer", Role.COUNTY_OFFICER, COUNTY),
                                   ("coop", Role.COOPERATIVE_MANAGER, COUNTY),
                                   ("other", Role.COOPERATIVE_MANAGER, COUNTY),
                                   ("alice", Role.CONSUMER, None), ("bob", Role.CONSUMER, None)):
            create_user(s, ADMIN, name, PW, role, region)
        org = Organisation(kind=OrganisationKind.COOPERATIVE, name="核桃合作社",
                           credit_code="93621221MA7K123451", region_code=COUNTY)
        s.add(org)
        s.flush()
        for zone, fee in (("county_town", 800), ("township", 1_000), ("village", 1_200)):
            set_zone(s, officer, COUNTY, zone, fee_fen=fee, days=3)
        h3 = s.scalars(select(Household.id).order_by(Household.number)).all()[2]
        org_id = org.id
    client = TestClient(create_app())
    return client, org_id, h3


def test_a_consumer_buys_walnuts_end_to_end(api):
    client, org_id, h3 = api
    coop, officer, alice = login(client, "coop"), login(client, "officer"), login(client, "alice")
    seller = client.post("/api/market/sellers", headers=coop, json={
        "kind": "cooperative", "name": "核桃合作社", "region_code": COUNTY, "organisation_id": org_id})
    assert seller.status_code == 201, seller.text
    sid = seller.json()["id"]
    assert client.post(f"/api/market/sellers/{sid}/links", headers=coop,
                       json={"household_id": h3, "kind": "member"}).json()["poor_households"] == 1
    assert client.post(f"/api/market/sellers/{sid}/certificate", headers=coop,
                       json={"note": "x"}).status_code == 403  # only a county officer certifies
    assert client.post(f"/api/market/sellers/{sid}/certificate", headers=officer,
                       json={"note": "linked to member households"}).json()["poverty_linked"]
    product = client.post(f"/api/market/sellers/{sid}/products", headers=coop, json={
        "name": "成县核桃", "category": "agricultural", "origin_code": VILLAGE_A}).json()
    bad = client.post(f"/api/market/products/{product['id']}/skus", headers=coop, json={
        "code": "W", "title": "2.5 kg", "unit": "bag", "weight_g": 2600, "price_fen": 99.5, "stock": 5})
    assert bad.status_code == 422 and "price_fen" in bad.json()["message"]
    other = login(client, "other")
    assert client.post(f"/api/market/products/{product['id']}/skus", headers=other, json={
        "code": "W", "title": "2.5 kg", "unit": "bag", "weight_g": 2600, "price_fen": 9900,
        "stock": 5}).status_code == 403
    sku = client.post(f"/api/market/products/{product['id']}/skus", headers=coop, json={
        "code": "W", "title": "2.5 kg", "unit": "bag", "weight_g": 2600, "price_fen": 9900,
        "stock": 5}).json()["skus"][0]

    found = client.get("/api/market/products", params={"q": "核桃", "poverty_linked": True}).json()
    assert found["total"] == 1 and found["items"][0]["seller"]["poverty_linked"] is True
    assert client.put("/api/market/cart", headers=alice,
                      json={"sku_id": sku["id"], "quantity": 2}).json()[0]["amount_fen"] == 19_800
    order = client.post("/api/market/checkout", headers=alice, json={
        "key": "alice-1", "ship_to_code": VILLAGE_A, "address": "东关村"})
    assert order.status_code == 201, order.text
    order = order.json()
    assert order["total_fen"] == 19_800 + 1_200 and order["lines"][0]["households"] == [h3]
    assert client.get("/api/market/cart", headers=alice).json() == []
    start = client.post(f"/api/market/orders/{order['id']}/payments", headers=alice).json()
    paid = client.post(start["pay_url"], headers=alice).json()
    assert paid["outcome"] == "captured" and paid["order"]["state"] == "paid"
    forged = client.post("/api/market/payments/test/callback",
                         content=b'{"reference":"%s","amount_fen":1,"status":"paid"}'
                         % start["reference"].encode(), headers={"X-Signature": "00"})
    assert forged.status_code == 400 and forged.json()["error"] == "bad_signature"
    assert client.get(f"/api/market/orders/{order['id']}",
                      headers=login(client, "bob")).status_code == 403
    assert client.post(f"/api/market/orders/{order['id']}/shipment", headers=coop, json={
        "carrier": "邮政", "tracking_number": "EMS1"}).json()["state"] == "shipped"
    done = client.post(f"/api/market/orders/{order['id']}/completion", headers=alice).json()
    assert done["state"] == "completed"
    assert client.get(f"/api/market/products/{product['id']}").json()["skus"][0]["in_stock"] == 3
    short = client.post("/api/market/checkout", headers=alice, json={
        "key": "alice-2", "items": [{"sku_id": sku["id"], "quantity": 4}], "ship_to_code": COUNTY})
    assert short.status_code == 409 and "has 3 left" in short.json()["message"]

    # A week to return: walnuts are produce, returned only for their quality.
    base = f"/api/market/orders/{order['id']}/returns"
    body = {"key": "alice-r1", "line_ids": [order["lines"][0]["id"]], "kind": "no_reason",
            "reason": "changed my mind"}
    ret = client.post(base, headers=alice, json=body)
    assert ret.status_code == 422 and "perishable" in ret.json()["message"]
    ret = client.post(base, headers=alice, json=body | {"kind": "quality", "reason": "empty shells"})
    assert ret.status_code == 201 and ret.json()["amount_fen"] == 19_800, ret.text
    queue = client.get("/api/market/returns", params={"state": "requested"}, headers=coop).json()
    assert [r["id"] for r in queue] == [ret.json()["id"]]
    decide = f"/api/market/returns/{ret.json()['id']}/decision"
    assert client.post(decide, headers=coop, json={"accept": "maybe"}).status_code == 422
    assert client.post(decide, headers=alice, json={"accept": True}).status_code == 403
    done = client.post(decide, headers=coop, json={"accept": True})
    assert done.status_code == 200 and done.json()["state"] == "refunded", done.text
    assert client.get(f"/api/market/orders/{order['id']}",
                      headers=alice).json()["refunded_fen"] == 19_800


def test_idempotency_key_header(api):
    client, org_id, _ = api
    alice = login(client, "alice")
    body = {"sku_id": 999, "quantity": 1}
    first = client.put("/api/market/cart", headers=alice | {"Idempotency-Key": "k1"}, json=body)
    assert first.status_code == 422  # no such SKU: kept and replayed like any answer
    again = client.put("/api/market/cart", headers=alice | {"Idempotency-Key": "k1"}, json=body)
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    other = client.put("/api/market/cart", headers=alice | {"Idempotency-Key": "k1"},
                       json={"sku_id": 998, "quantity": 1})
    assert other.status_code == 422 and "different request" in other.json()["message"]
    # A first request still running: its repeat gets 409.
    import hashlib

    from ecpa.api.idempotency import IdempotencyRecord
    caller = hashlib.sha256(alice["Authorization"].encode()).hexdigest()
    with session_scope() as s:
        s.add(IdempotencyRecord(caller=caller, key="k2", request_hash="x", state="running"))
    busy = client.post("/api/market/checkout", headers=alice | {"Idempotency-Key": "k2"},
                       json={"key": "c", "ship_to_code": COUNTY})
    assert busy.status_code == 409 and "in progress" in busy.json()["message"]
    # ... unless it has been running for minutes: its server died, the key is free again.
    from datetime import timedelta

    from ecpa.db import utcnow
    with session_scope() as s:
        s.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == "k2")).created_at = (
            utcnow() - timedelta(minutes=5))
    retry = client.post("/api/market/checkout", headers=alice | {"Idempotency-Key": "k2"},
                        json={"key": "c", "ship_to_code": COUNTY})
    assert retry.status_code == 422 and "cart is empty" in retry.json()["message"]
    # Another caller's same key is another request.
    bob = login(client, "bob")
    assert client.put("/api/market/cart", headers=bob | {"Idempotency-Key": "k1"},
                      json={"sku_id": 998, "quantity": 1}).headers.get("Idempotent-Replayed") is None
