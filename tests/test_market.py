"""The marketplace on SQLite and PostgreSQL: sellers and their certificate, checkout that
never oversells (200 concurrent buyers for 50 items on PostgreSQL), signed payment
callbacks that cannot be forged or replayed, expiry, refunds, and order totals that agree
with the ledger to the fen."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from conftest import COUNTY, VILLAGE_A
from sqlalchemy import func, select

from ecpa.db import session_factory, session_scope, utcnow
from ecpa.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ecpa.ledger.service import attributed_income, balance
from ecpa.market import catalog, orders, payments
from ecpa.market.models import OrderState, PaymentCallback, Sku
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
    """A poor household selling honey and a cooperative selling walnuts, linked to a
    poor household and certified."""
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
        with pytest.raises(Conflict, match="no registered poor household"):
            catalog.certify(s, OFFICER, coop.id)
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
        # Delivery: 8 yuan to the county town, 10 to a township, 12 to a village (pickup
        # at the station where couriers stop at the township).
        from ecpa.stations.service import set_zone
        for zone, fee in (("county_town", 800), ("township", 1_000), ("village", 1_200)):
            set_zone(s, OFFICER, COUNTY, zone, fee_fen=fee, days=3)
        return dict(h1=h1, h3=h3, family=family.id, coop=coop.id, honey=honey_sku.id,
                    walnut=walnut_sku.id)


def pay(db_url, actor, order_id, amount=None):
    start = payments.start_payment(session_factory(db_url), actor, order_id)
    body, sig = payments.gateway_named("test").callback(start.reference,
                                                        amount or start.amount_fen)
    return start, payments.handle_callback(session_factory(db_url), "test", body, sig)


def test_sellers_catalog_and_the_poverty_linked_mark(db_url, shop):
    with session_scope(db_url) as s:
        found = catalog.search(s, text="核桃")
        assert found["total"] == 1 and found["items"][0]["seller"]["poverty_linked"] is True
        assert catalog.search(s, poverty_linked=True)["total"] == 1
        assert catalog.search(s, county=COUNTY, max_price_fen=7_000)["items"][0]["name"] == "土蜂蜜"
        with pytest.raises(PermissionDenied, match="managed by another user"):
            catalog.add_sku(s, COOP_MANAGER, found["items"][0]["id"] - 1, code="X", title="x",
                            unit="jar", weight_g=1, price_fen=1, stock=1)  # the honey: not theirs
        with pytest.raises(InvalidInput, match="unknown category"):
            catalog.add_product(s, COOP_MANAGER, shop["coop"], name="x", category="gold",
                                origin_code=COUNTY)
        catalog.revoke(s, OFFICER, shop["coop"], "members left the cooperative")
        assert catalog.search(s, poverty_linked=True)["total"] == 0
        catalog.set_pavilion(s, OFFICER, COUNTY, "成县特色馆", "核桃之乡", [found["items"][0]["id"]])
        assert catalog.pavilion_view(s, COUNTY)["featured"][0]["name"] == "成县核桃"
        with pytest.raises(InvalidInput, match="not a county"):
            catalog.set_pavilion(s, OFFICER, VILLAGE_A, "x", "", [])


def test_an_order_from_checkout_to_completion_agrees_with_the_ledger(db_url, shop):
    f = session_factory(db_url)
    b = buyer(1)
    order = orders.checkout(f, b, "c1", [orders.Item(shop["honey"], 2), orders.Item(shop["walnut"], 3)],
                            ship_to_code=VILLAGE_A, address="东关村一组")
    assert orders.checkout(f, b, "c1", [orders.Item(shop["honey"], 2)],
                           ship_to_code=VILLAGE_A)["id"] == order["id"]  # same checkout, same order
    assert order["total_fen"] == 2 * 6_800 + 3 * 9_900 + order["delivery_fee_fen"]
    honey_line, walnut_line = order["lines"]
    assert honey_line["households"] == [shop["h1"]] and walnut_line["households"] == [shop["h3"]]
    with session_scope(db_url) as s:
        assert s.get(Sku, shop["honey"]).stock == 18
    _start, result = pay(db_url, b, order["id"])
    assert result["outcome"] == "captured" and result["order"]["state"] == "paid"
    with pytest.raises(PermissionDenied):
        orders.refund(f, buyer(2), order["id"], "r0", None, "not mine")
    # One jar broke: the buyer gets that line back; the rest goes on.
    orders.refund(f, b, order["id"], "r1", [honey_line["id"]], "jar broken")
    orders.refund(f, b, order["id"], "r1", [honey_line["id"]], "jar broken")  # once
    with pytest.raises(InvalidInput, match="already refunded"):
        orders.refund(f, b, order["id"], "r2", [honey_line["id"]], "again")
    orders.ship(f, COOP_MANAGER, order["id"], "邮政", "EMS123")
    assert orders.ship(f, COOP_MANAGER, order["id"], "邮政", "EMS123")["state"] == "shipped"
    with pytest.raises(PermissionDenied):
        orders.complete(f, COOP_MANAGER, order["id"])  # the buyer confirms receipt
    done = orders.complete(f, b, order["id"])
    assert done["state"] == "completed" and done["refunded_fen"] == 2 * 6_800
    with session_scope(db_url) as s:
        # Every fen: the gateway took the total and gave back the refund; nothing is left
        # in transit; the cooperative got its walnuts' price; delivery its fee.
        assert balance(s, orders.gateway_account("test")) == order["total_fen"] - 2 * 6_800
        assert balance(s, orders.IN_TRANSIT) == 0
        assert balance(s, f"seller:{shop['coop']}") == -3 * 9_900
        assert balance(s, orders.DELIVERY_FEES) == -order["delivery_fee_fen"]
        assert s.scalar(select(func.count()).select_from(PaymentCallback)) == 1
        assert attributed_income(s, utcnow().year).get(shop["h1"]) is None  # refunded: no income


def test_a_poor_household_sale_is_its_income(db_url, shop):
    f = session_factory(db_url)
    order = orders.checkout(f, buyer(1), "k", [orders.Item(shop["honey"], 3)], ship_to_code=COUNTY)
    pay(db_url, buyer(1), order["id"])
    orders.ship(f, ADMIN, order["id"], "顺丰", "SF1")
    orders.mark_delivered(f, ADMIN, order["id"])
    orders.complete(f, buyer(1), order["id"])
    with session_scope(db_url) as s:
        assert attributed_income(s, utcnow().year)[shop["h1"]] == {"industry": 3 * 6_800}


def test_forged_repeated_and_wrong_amount_callbacks_change_nothing(db_url, shop):
    f = session_factory(db_url)
    order = orders.checkout(f, buyer(1), "k", [orders.Item(shop["walnut"], 1)], ship_to_code=COUNTY)
    start = payments.start_payment(f, buyer(1), order["id"])
    assert payments.start_payment(f, buyer(1), order["id"]).reference == start.reference
    gw = payments.gateway_named("test")
    body, sig = gw.callback(start.reference, start.amount_fen)
    with pytest.raises(payments.Forged):
        payments.handle_callback(f, "test", body, "0" * 64)
    forged = body.replace(b'"status":"paid"', b'"status":"paid" ')
    with pytest.raises(payments.Forged):
        payments.handle_callback(f, "test", forged, sig)
    wrong, wrong_sig = gw.callback(start.reference, start.amount_fen - 1)
    with pytest.raises(InvalidInput, match="says"):
        payments.handle_callback(f, "test", wrong, wrong_sig)
    unknown, unknown_sig = gw.callback("pay_nobody", 1)
    with pytest.raises(NotFound):
        payments.handle_callback(f, "test", unknown, unknown_sig)
    with session_scope(db_url) as s:
        assert orders.show(s, ADMIN, order["id"])["state"] == "pending_payment"
        assert balance(s, orders.IN_TRANSIT) == 0
    assert payments.handle_callback(f, "test", body, sig)["outcome"] == "captured"
    assert payments.handle_callback(f, "test", body, sig)["outcome"] == "duplicate"
    with session_scope(db_url) as s:
        assert balance(s, orders.IN_TRANSIT) == -order["total_fen"]  # captured once
        outcomes = sorted(s.scalars(select(PaymentCallback.outcome)))
        assert outcomes == ["captured", "duplicate", "forged", "forged", "unknown", "wrong_amount"]


def test_abandoned_checkouts_give_their_stock_back_and_late_payments(db_url, shop):
    f = session_factory(db_url)
    gw = payments.gateway_named("test")
    t0 = utcnow()
    a = orders.checkout(f, buyer(1), "a", [orders.Item(shop["honey"], 15)], ship_to_code=COUNTY, now=t0)
    a_pay = payments.start_payment(f, buyer(1), a["id"])
    with pytest.raises(Conflict, match="has 5 left"):
        orders.checkout(f, buyer(2), "b", [orders.Item(shop["honey"], 10)], ship_to_code=COUNTY, now=t0)
    # Sixteen minutes later buyer 1 has not paid: buyer 2's checkout gives its stock back
    # and takes 10.
    later = t0 + timedelta(minutes=16)
    b = orders.checkout(f, buyer(2), "b", [orders.Item(shop["honey"], 10)], ship_to_code=COUNTY, now=later)
    with session_scope(db_url) as s:
        assert orders.show(s, ADMIN, a["id"])["state"] == "expired"
        assert s.get(Sku, shop["honey"]).stock == 10
    # Buyer 1's payment arrives late; 15 jars are no longer there: the money goes back.
    body, sig = gw.callback(a_pay.reference, a_pay.amount_fen)
    assert payments.handle_callback(f, "test", body, sig)["outcome"] == "refunded_expired"
    assert (a_pay.reference, a_pay.amount_fen) in gw.refunds
    with session_scope(db_url) as s:
        assert balance(s, orders.IN_TRANSIT) == 0 and balance(s, orders.gateway_account("test")) == 0
    orders.cancel(f, buyer(2), b["id"])
    # An expired order paid late while its stock is still there takes it again.
    c = orders.checkout(f, buyer(3), "c", [orders.Item(shop["honey"], 5)], ship_to_code=COUNTY, now=t0)
    c_pay = payments.start_payment(f, buyer(3), c["id"])
    assert orders.release_expired(f, later) == 1
    body, sig = gw.callback(c_pay.reference, c_pay.amount_fen)
    assert payments.handle_callback(f, "test", body, sig)["order"]["state"] == "paid"
    with session_scope(db_url) as s:
        assert s.get(Sku, shop["honey"]).stock == 15


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_200_concurrent_checkouts_of_50_items_sell_exactly_50(db_url, shop):
    f = session_factory(db_url)
    with session_scope(db_url) as s:
        catalog.update_sku(s, ADMIN, shop["walnut"], add_stock=0)
    barrier = threading.Barrier(32)

    def one(n: int) -> str:
        if n < 32:
            barrier.wait()
        b = buyer(n)
        try:
            order = orders.checkout(f, b, f"k{n}", [orders.Item(shop["walnut"], 1)],
                                    ship_to_code=COUNTY)
        except Conflict:
            return "sold out"
        _, result = pay(db_url, b, order["id"])
        return result["outcome"]

    with ThreadPoolExecutor(max_workers=32) as pool:
        outcomes = list(pool.map(one, range(200)))
    assert outcomes.count("captured") == 50 and outcomes.count("sold out") == 150
    with session_scope(db_url) as s:
        from ecpa.market.models import Order
        assert s.get(Sku, shop["walnut"]).stock == 0
        paid = s.scalars(select(Order).where(Order.state == OrderState.PAID)).all()
        assert len(paid) == 50 and len({o.buyer for o in paid}) == 50
        assert balance(s, orders.IN_TRANSIT) == -sum(o.total_fen for o in paid)


def test_a_refund_lost_between_commit_and_gateway_is_sent_by_the_next_run(db_url, shop, monkeypatch):
    f = session_factory(db_url)
    order = orders.checkout(f, buyer(1), "k", [orders.Item(shop["walnut"], 2)], ship_to_code=COUNTY)
    start, _ = pay(db_url, buyer(1), order["id"])
    gw = payments.gateway_named("test")
    # The process dies after the refund's commit, before the gateway is asked.
    monkeypatch.setattr(orders, "send_pending_refunds", lambda *a, **k: (_ for _ in ()).throw(
        SystemExit("killed")))
    with pytest.raises(SystemExit):
        orders.cancel(f, buyer(1), order["id"])
    assert gw.refunds == []
    monkeypatch.undo()
    assert orders.send_pending_refunds(f) == 1  # the timer's next run
    assert orders.send_pending_refunds(f) == 0
    assert gw.refunds == [(start.reference, order["total_fen"])]
    with session_scope(db_url) as s:
        assert s.get(Sku, shop["walnut"]).stock == 50 and balance(s, orders.IN_TRANSIT) == 0


def test_a_second_payment_goes_back_alone_and_the_order_completes(db_url, shop):
    f = session_factory(db_url)
    order = orders.checkout(f, buyer(1), "k", [orders.Item(shop["walnut"], 1)], ship_to_code=COUNTY)
    gw = payments.gateway_named("test")
    first = payments.start_payment(f, buyer(1), order["id"])
    with session_scope(db_url) as s:  # a second payment, as a second tap on another phone would
        from ecpa.market.models import Payment, PaymentState
        s.add(Payment(order_id=order["id"], gateway="test", reference="pay_second",
                      amount_fen=first.amount_fen, state=PaymentState.PENDING))
    for ref in (first.reference, "pay_second"):
        body, sig = gw.callback(ref, first.amount_fen)
        outcome = payments.handle_callback(f, "test", body, sig)["outcome"]
    assert outcome == "refunded_paid" and gw.refunds == [("pay_second", first.amount_fen)]
    orders.ship(f, COOP_MANAGER, order["id"], "邮政", "EMS9")
    done = orders.complete(f, buyer(1), order["id"])
    assert done["state"] == "completed" and done["refunded_fen"] == 0
    with session_scope(db_url) as s:
        assert balance(s, orders.IN_TRANSIT) == 0


def test_refunds_after_shipment_need_the_seller_and_keys_are_not_a_way_in(db_url, shop):
    f = session_factory(db_url)
    order = orders.checkout(f, buyer(1), "k", [orders.Item(shop["walnut"], 1)], ship_to_code=COUNTY)
    pay(db_url, buyer(1), order["id"])
    with pytest.raises(InvalidInput, match="name the lines"):
        orders.refund(f, buyer(1), order["id"], "r", [], "x")
    orders.ship(f, COOP_MANAGER, order["id"], "邮政", "EMS9")
    with pytest.raises(PermissionDenied):
        orders.refund(f, buyer(1), order["id"], "r1", None, "I want my money and the walnuts")
    with pytest.raises(Conflict, match="shipped; ask for a refund"):
        orders.cancel(f, buyer(1), order["id"])
    orders.refund(f, COOP_MANAGER, order["id"], "r2", None, "lost by the courier")
    with pytest.raises(PermissionDenied):  # a stranger replaying the key learns nothing
        orders.refund(f, buyer(2), order["id"], "r2", None, "x")


def test_returns_after_delivery_take_the_money_back_from_the_seller(db_url, shop):
    """Seven days without a reason for a handicraft, a quality return for walnuts, fresh
    honey refused without a reason; accepted after completion, the seller's account (a
    poor household's: its industry income) gives the amount back through the gateway."""
    from ecpa.market import returns
    from ecpa.market.models import Refund
    f = session_factory(db_url)
    with session_scope(db_url) as s:
        craft = catalog.add_product(s, OFFICER, shop["family"], name="手工刺绣鞋垫",
                                    category="handicraft", origin_code=VILLAGE_A)
        insoles = catalog.add_sku(s, OFFICER, craft.id, code="INSOLE", title="a pair",
                                  unit="pair", weight_g=100, price_fen=3_500, stock=10).id
    b = buyer(1)
    order = orders.checkout(f, b, "ret", [orders.Item(shop["honey"], 1), orders.Item(insoles, 2),
                                          orders.Item(shop["walnut"], 1)], ship_to_code=COUNTY)
    line = {x["sku_id"]: x["id"] for x in order["lines"]}
    pay(db_url, b, order["id"])
    with pytest.raises(Conflict, match="only delivered goods"):
        returns.request_return(f, b, order["id"], "x", [line[insoles]], "no_reason", "too small")
    orders.ship(f, ADMIN, order["id"], "邮政", "EMS9")
    orders.mark_delivered(f, ADMIN, order["id"])
    orders.complete(f, b, order["id"])
    with session_scope(db_url) as s:
        assert attributed_income(s, utcnow().year)[shop["h1"]] == {"industry": 6_800 + 7_000}

    with pytest.raises(InvalidInput, match="fresh or perishable") as e:
        returns.request_return(f, b, order["id"], "h", [line[shop["honey"]]], "no_reason", "changed mind")
    assert e.value.detail["field"] == "kind"
    with pytest.raises(PermissionDenied):
        returns.request_return(f, buyer(2), order["id"], "y", [line[insoles]], "no_reason", "mine?")
    with pytest.raises(InvalidInput, match="not in this order"):
        returns.request_return(f, b, order["id"], "z", [999_999], "quality", "?")
    # Another buyer's key "r1" on another order is theirs, not a clash.
    other = orders.checkout(f, buyer(3), "o3", [orders.Item(insoles, 1)], ship_to_code=COUNTY)
    pay(db_url, buyer(3), other["id"])
    orders.ship(f, ADMIN, other["id"], "邮政", "EMS8")
    orders.mark_delivered(f, ADMIN, other["id"])
    assert returns.request_return(f, buyer(3), other["id"], "r1", [other["lines"][0]["id"]],
                                  "no_reason", "gift not wanted")["state"] == "requested"
    asked = returns.request_return(f, b, order["id"], "r1", [line[insoles]], "no_reason", "too small")
    assert (asked["state"], asked["amount_fen"]) == ("requested", 7_000)
    assert returns.request_return(f, b, order["id"], "r1", [line[insoles]], "no_reason",
                                  "too small")["id"] == asked["id"]
    with pytest.raises(Conflict, match="waiting for the seller"):
        returns.request_return(f, b, order["id"], "r2", [line[insoles]], "quality", "torn")
    nuts = returns.request_return(f, b, order["id"], "r3", [line[shop["walnut"]]], "quality",
                                  "half of them mouldy")

    cadre = Actor("cadre", Role.VILLAGE_CADRE, VILLAGE_A)  # manages the family's shop
    with pytest.raises(PermissionDenied):
        returns.decide_return(f, cadre, nuts["id"], True)  # the cooperative's walnuts
    with pytest.raises(InvalidInput, match="why the return is refused"):
        returns.decide_return(f, COOP_MANAGER, nuts["id"], False)
    refused = returns.decide_return(f, COOP_MANAGER, nuts["id"], False, "photos show sound nuts")
    assert refused["state"] == "refused"
    with pytest.raises(Conflict, match="is refused"):
        returns.decide_return(f, COOP_MANAGER, nuts["id"], True)
    done = returns.decide_return(f, cadre, asked["id"], True)
    assert done["state"] == "refunded" and returns.decide_return(f, cadre, asked["id"], True) == done
    with session_scope(db_url) as s:
        # The household gave back the insoles' price: its income is the honey's; the
        # gateway paid the buyer back; nothing is in transit.
        assert attributed_income(s, utcnow().year)[shop["h1"]] == {"industry": 6_800}
        assert balance(s, f"hh:{shop['h1']}:market:{shop['family']}") == -6_800
        assert balance(s, orders.gateway_account("test")) == \
            order["total_fen"] - 7_000 + other["total_fen"]
        assert balance(s, orders.IN_TRANSIT) == -other["total_fen"]  # delivered, not completed
        assert s.scalar(select(Refund.sent_at).where(Refund.key == f"return:{asked['id']}")) is not None
        assert [r["id"] for r in returns.list_returns(s, b)] == [nuts["id"], asked["id"]]
        assert [r["id"] for r in returns.list_returns(s, COOP_MANAGER, "refused")] == [nuts["id"]]
        assert returns.list_returns(s, buyer(2)) == []

    # A week after delivery the window has closed.
    late = orders.checkout(f, b, "late", [orders.Item(insoles, 1)], ship_to_code=COUNTY)
    pay(db_url, b, late["id"])
    orders.ship(f, ADMIN, late["id"], "邮政", "EMS10")
    orders.mark_delivered(f, ADMIN, late["id"])
    with pytest.raises(Conflict, match="returns were open until"):
        returns.request_return(f, b, late["id"], "r9", [late["lines"][0]["id"]], "no_reason",
                               "late", now=utcnow() + timedelta(days=8))
    # Delivered, not completed: the money is still in transit and comes back from there.
    early = returns.request_return(f, b, late["id"], "r8", [late["lines"][0]["id"]], "no_reason",
                                   "not needed")
    with pytest.raises(Conflict, match="return waiting"):  # not refunded twice over
        orders.refund(f, OFFICER, late["id"], "x8", [late["lines"][0]["id"]], "agreed")
    with pytest.raises(InvalidInput, match="may not start with return:"):
        orders.refund(f, OFFICER, late["id"], f"return:{early['id']}", None, "sneaky")
    with pytest.raises(PermissionDenied):  # an officer of another county
        returns.decide_return(f, Actor("wudu", Role.COUNTY_OFFICER, "621202"), early["id"], True)
    returns.decide_return(f, OFFICER, early["id"], True)
    done = orders.complete(f, b, late["id"])
    with session_scope(db_url) as s:
        assert balance(s, orders.IN_TRANSIT) == -other["total_fen"]
        assert balance(s, f"hh:{shop['h1']}:market:{shop['family']}") == -6_800  # nothing more
    assert done["refunded_fen"] == 3_500
