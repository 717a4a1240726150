"""Village service stations on SQLite and PostgreSQL: the station_keeper role in the
database, the county / township / village network, delivery quotes by zone (pickup at the
village station where couriers stop at the township), assisted purchases with the
keeper's commission posted once, consignment of villagers' goods traced as their income,
the API's role checks and a CLI command."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from conftest import COUNTY, PW, TOWNSHIP, VILLAGE_A, VILLAGE_B, login
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from ecpa.db import get_engine, session_factory, session_scope, utcnow
from ecpa.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ecpa.ledger.models import Transaction
from ecpa.ledger.service import attributed_income, balance
from ecpa.market.models import Order, OrderState
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household
from ecpa.stations import service
from ecpa.stations.models import AssistedOrder
from ecpa.stations.service import NoDeliveryZone, quote_delivery, set_zone

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
KEEPER_A = Actor("keeper_a", Role.STATION_KEEPER, VILLAGE_A)
KEEPER_B = Actor("keeper_b", Role.STATION_KEEPER, VILLAGE_B)


@pytest.fixture
def net(db_url, register_file):
    """Households h1, h2 in village A and h3 in village B; users; the county centre, the
    township station and a station in each village with its keeper."""
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        h1, h2, h3 = s.scalars(select(Household.id).order_by(Household.number)).all()
        create_user(s, ADMIN, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ADMIN, "cadre", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        for name, village in (("keeper_a", VILLAGE_A), ("keeper_b", VILLAGE_B)):
            create_user(s, OFFICER, name, PW, Role.STATION_KEEPER, village)
        centre = service.create_station(s, OFFICER, COUNTY, "成县电商服务中心")
        town = service.create_station(s, OFFICER, TOWNSHIP, "城关镇服务站")
        a = service.create_station(s, OFFICER, VILLAGE_A, "东关村服务站", "keeper_a",
                                   "0939-3212345")
        b = service.create_station(s, OFFICER, VILLAGE_B, "西关村服务站", "keeper_b",
                                   commission_bp=800)
        return {"h1": h1, "h2": h2, "h3": h3, "centre": centre.id, "town": town.id,
                "a": a.id, "b": b.id}


def test_the_database_accepts_station_keeper_and_refuses_a_bogus_role(db_url):
    insert = text("INSERT INTO app_user (username, display_name, password_hash, role, active, "
                  "created_at) VALUES (:u, '', 'x', :r, :a, :t)")
    engine = get_engine(db_url)
    with engine.begin() as c:
        c.execute(insert, {"u": "k", "r": "station_keeper", "a": True, "t": utcnow()})
    with pytest.raises(IntegrityError), engine.begin() as c:
        c.execute(insert, {"u": "x", "r": "bogus", "a": True, "t": utcnow()})
    with engine.connect() as c:
        assert c.execute(text("SELECT role FROM app_user")).scalars().all() == ["station_keeper"]


def test_the_three_level_network(db_url, net):
    with session_scope(db_url) as s:
        tree = service.network(s, COUNTY)
        assert tree["centre"]["level"] == "county"
        (town,) = tree["townships"]
        assert town["station"]["level"] == "township"
        assert [(v["region_code"], v["station"]["keeper_username"]) for v in town["villages"]] == [
            (VILLAGE_A, "keeper_a"), (VILLAGE_B, "keeper_b")]
        assert tree["active_stations"] == {"county": 1, "township": 1, "village": 2}
        a = service.get_station(s, net["a"])
        assert (a.commission_bp, a.phone) == (1000, "0939-3212345")  # about 10 % by default
        with pytest.raises(Conflict, match="already has a station"):
            service.create_station(s, OFFICER, VILLAGE_A, "again")
        with pytest.raises(InvalidInput, match="scoped to 621221100002"):
            service.update_station(s, OFFICER, net["a"], keeper_username="keeper_b")
        with pytest.raises(InvalidInput, match="not station_keeper"):
            service.update_station(s, OFFICER, net["a"], keeper_username="cadre")
        with pytest.raises(InvalidInput, match="commission_bp"):
            service.update_station(s, OFFICER, net["a"], commission_bp=10_001)
        with pytest.raises(InvalidInput, match="a prefecture"):
            service.create_station(s, ADMIN, "621200", "陇南")
        with pytest.raises(PermissionDenied):
            service.create_station(s, Actor("o2", Role.COUNTY_OFFICER, "620102"), VILLAGE_A, "x")
        with pytest.raises(PermissionDenied):
            service.create_station(s, KEEPER_A, VILLAGE_A, "x")
        assert service.update_station(s, OFFICER, net["a"], commission_bp=1200).commission_bp == 1200


def test_quotes_by_zone_weight_and_pickup_at_the_village_station(db_url, net):
    with session_scope(db_url) as s:
        with pytest.raises(NoDeliveryZone, match=f"no delivery zone covers {VILLAGE_A}"):
            quote_delivery(s, VILLAGE_A, 500)
        set_zone(s, OFFICER, COUNTY, "county_town", fee_fen=600, days=1)
        set_zone(s, OFFICER, COUNTY, "township", fee_fen=800, days=2, per_kg_fen=200)
        set_zone(s, OFFICER, COUNTY, "village", fee_fen=1000, days=3, base_weight_g=2000,
                 per_kg_fen=300)
        q = quote_delivery(s, COUNTY, 900)
        assert (q.fee_fen, q.days, q.pickup_station_id, q.zone) == (600, 1, None, "county_town")
        assert quote_delivery(s, TOWNSHIP, 1000).fee_fen == 800
        assert quote_delivery(s, TOWNSHIP, 1001).fee_fen == 1000      # a started kg: +2 yuan
        assert quote_delivery(s, TOWNSHIP, 3500).fee_fen == 800 + 3 * 200
        q = quote_delivery(s, VILLAGE_A, 4_200)                         # 2.2 kg over: 3 kg
        assert (q.fee_fen, q.days, q.pickup_station_id, q.zone) == (1000 + 3 * 300, 3, None,
                                                                    "village")
        # Couriers reach only this township: parcels for its villages wait at their station.
        set_zone(s, OFFICER, TOWNSHIP, "village", fee_fen=500, days=4, door_delivery=False)
        q = quote_delivery(s, VILLAGE_B, 1000)
        assert (q.fee_fen, q.days, q.pickup_station_id) == (500, 4, net["b"])
        assert quote_delivery(s, COUNTY, 100).fee_fen == 600          # the county's rule stays
        # A closed village station: the township's holds the parcel.
        service.update_station(s, OFFICER, net["b"], active=False)
        assert quote_delivery(s, VILLAGE_B, 1000).pickup_station_id == net["town"]
        with pytest.raises(InvalidInput, match="zones are set for a county or a township"):
            set_zone(s, OFFICER, VILLAGE_A, "village", fee_fen=1, days=1)
        with pytest.raises(InvalidInput, match="fee_fen"):
            set_zone(s, OFFICER, COUNTY, "village", fee_fen=9.5, days=1)
        with pytest.raises(PermissionDenied):
            set_zone(s, KEEPER_A, COUNTY, "village", fee_fen=1, days=1)
        with pytest.raises(NoDeliveryZone, match="no delivery zone covers 620102"):
            quote_delivery(s, "620102", 100)                            # another county
        with pytest.raises(NoDeliveryZone, match="is a province"):
            quote_delivery(s, "620000", 100)
        with pytest.raises(NoDeliveryZone, match="unknown ship-to region 999999"):
            quote_delivery(s, "999999", 100)
        assert service.remove_zone(s, OFFICER, TOWNSHIP, "village")
        assert quote_delivery(s, VILLAGE_B, 1000).pickup_station_id is None
        assert {z["region_code"] for z in service.zones(s, COUNTY)} == {COUNTY}


def _order(s, keeper: str | None, items_fen: int = 12_345) -> int:
    order = Order(buyer=keeper or "someone", checkout_key=f"k{items_fen}{keeper}",
                  state=OrderState.PAID, items_fen=items_fen, total_fen=items_fen,
                  ship_to_code=VILLAGE_A, assisted_by=keeper,
                  reserved_until=utcnow() + timedelta(minutes=15))
    s.add(order)
    s.flush()
    return order.id


def test_assisted_purchase_commission_posted_once(db_url, net):
    with session_scope(db_url) as s:
        oid = _order(s, "keeper_a")
        other = _order(s, None, 500)
        with pytest.raises(PermissionDenied, match="outside station"):
            service.record_assisted_order(s, KEEPER_A, net["a"], net["h3"], oid)  # village B
        with pytest.raises(PermissionDenied, match="do not keep"):
            service.record_assisted_order(s, KEEPER_B, net["a"], net["h1"], oid)
        with pytest.raises(Conflict, match="not placed by the keeper"):
            service.record_assisted_order(s, KEEPER_A, net["a"], net["h1"], other)
        row = service.record_assisted_order(s, KEEPER_A, net["a"], net["h1"], oid)
        assert (row.commission_bp, row.commission_fen) == (1000, 1_234)  # 12 345 × 10 % ↓
        assert service.record_assisted_order(s, KEEPER_A, net["a"], net["h1"], oid).id == row.id
        with pytest.raises(Conflict, match="recorded as assisted"):
            service.record_assisted_order(s, KEEPER_A, net["a"], net["h2"], oid)
        with pytest.raises(Conflict, match="paid when it completes"):
            service.pay_commission(s, OFFICER, oid)
        with pytest.raises(PermissionDenied):
            service.pay_commission(s, KEEPER_A, oid)
        order = s.get(Order, oid)
        order.state, order.completed_at = OrderState.COMPLETED, utcnow()
        s.flush()
        paid = service.pay_commission(s, OFFICER, oid)
        assert service.on_order_completed(s, oid).transaction_id == paid.transaction_id
        assert service.on_order_completed(s, other) is None          # not assisted: nothing
        assert balance(s, f"station:{net['a']}") == -1_234
        assert balance(s, service.COMMISSION_ACCOUNT) == 1_234
        key = f"station:{net['a']}:commission:{oid}"
        assert s.scalar(select(func.count()).select_from(Transaction)
                        .where(Transaction.key == key)) == 1


def test_assisted_checkout_end_to_end_through_the_marketplace(db_url, net):
    orders = pytest.importorskip("ecpa.market.orders")
    from ecpa.market import catalog, payments

    payments.reset_gateways()
    f = session_factory(db_url)
    with session_scope(db_url) as s:
        seller = catalog.create_seller(s, OFFICER, kind="household", name="王家蜂蜜",
                                       region_code=VILLAGE_A, household_id=net["h1"],
                                       manager_username="cadre")
        product = catalog.add_product(s, OFFICER, seller.id, name="化肥", category="food",
                                      origin_code=VILLAGE_A)
        sku = catalog.add_sku(s, OFFICER, product.id, code="FERT-40", title="40 kg bag",
                              unit="bag", weight_g=40_000, price_fen=15_000, stock=10).id
        seed = catalog.add_sku(s, OFFICER, product.id, code="SEED-1", title="seed", unit="bag",
                               weight_g=1_000, price_fen=5_000, stock=10).id
        set_zone(s, OFFICER, COUNTY, "village", fee_fen=1000, days=3, door_delivery=False)
    with pytest.raises(PermissionDenied):  # village B's household: refused before any stock moves
        service.assisted_checkout(f, KEEPER_A, net["a"], net["h3"], "c1", [orders.Item(sku, 1)])
    items = [orders.Item(sku, 2), orders.Item(seed, 1)]
    order = service.assisted_checkout(f, KEEPER_A, net["a"], net["h2"], "c1", items)
    again = service.assisted_checkout(f, KEEPER_A, net["a"], net["h2"], "c1", items)
    assert again["id"] == order["id"]
    assert (order["assisted_by"], order["pickup_station_id"]) == ("keeper_a", net["a"])
    start = payments.start_payment(f, KEEPER_A, order["id"])
    body, sig = payments.gateway_named("test").callback(start.reference, start.amount_fen)
    payments.handle_callback(f, "test", body, sig)
    seed_line = next(x["id"] for x in order["lines"] if x["sku_id"] == seed)
    orders.refund(f, KEEPER_A, order["id"], "r1", [seed_line], "wrong seed")  # no commission on it
    orders.ship(f, ADMIN, order["id"], "邮政", "EMS1")
    orders.complete(f, KEEPER_A, order["id"])
    with session_scope(db_url) as s:
        service.on_order_completed(s, order["id"])  # the marketplace's completion hook
    with session_scope(db_url) as s:
        assert balance(s, f"station:{net['a']}") == -(2 * 15_000 // 10)
    # The fertiliser came back for its quality, after completion: so does the commission
    # the keeper was paid on it, and nothing is left on the station's account.
    from ecpa.market import returns
    fert_line = next(x["id"] for x in order["lines"] if x["sku_id"] == sku)
    asked = returns.request_return(f, KEEPER_A, order["id"], "q1", [fert_line], "quality", "caked")
    returns.decide_return(f, Actor("cadre", Role.VILLAGE_CADRE, VILLAGE_A), asked["id"], True)
    with session_scope(db_url) as s:
        assert balance(s, f"station:{net['a']}") == 0
        assert s.scalar(select(AssistedOrder.commission_fen)
                        .where(AssistedOrder.order_id == order["id"])) == 0


def test_consignment_in_sale_payout_and_the_households_income(db_url, net):
    day = date(2024, 9, 1)
    with session_scope(db_url) as s:
        c = service.receive(s, KEEPER_A, net["a"], net["h1"], key="r1", product="核桃",
                            quantity=50, unit="jin", price_fen=1_500, received_on=day)
        assert service.receive(s, KEEPER_A, net["a"], net["h1"], key="r1", product="核桃",
                               quantity=50, unit="jin", price_fen=1_500, received_on=day).id == c.id
        with pytest.raises(Conflict, match="another receipt"):
            service.receive(s, KEEPER_A, net["a"], net["h1"], key="r1", product="核桃",
                            quantity=60, unit="jin", price_fen=1_500, received_on=day)
        with pytest.raises(PermissionDenied):
            service.receive(s, KEEPER_A, net["a"], net["h3"], key="r2", product="花椒",
                            quantity=5, unit="jin", price_fen=9_000, received_on=day)
        with pytest.raises(PermissionDenied):
            service.receive(s, KEEPER_B, net["a"], net["h1"], key="r3", product="花椒",
                            quantity=5, unit="jin", price_fen=9_000, received_on=day)
        with pytest.raises(InvalidInput, match="price_fen"):
            service.receive(s, KEEPER_A, net["a"], net["h1"], key="r4", product="x",
                            quantity=1, unit="jin", price_fen=0, received_on=day)
        sale = service.sell(s, KEEPER_A, net["a"], c.id, key="s1", quantity=30, sold_on=day)
        assert sale.amount_fen == 45_000
        assert service.sell(s, KEEPER_A, net["a"], c.id, key="s1", quantity=30,
                            sold_on=day).id == sale.id
        with pytest.raises(InvalidInput, match="only 20 jin"):
            service.sell(s, KEEPER_A, net["a"], c.id, key="s2", quantity=21, sold_on=day)
        service.sell(s, KEEPER_A, net["a"], c.id, key="s2", quantity=20, sold_on=day,
                     unit_price_fen=1_600)
        with pytest.raises(InvalidInput, match="only 0 jin"):
            service.sell(s, KEEPER_A, net["a"], c.id, key="s3", quantity=1, sold_on=day)
        assert attributed_income(s, 2024)[net["h1"]] == {"industry": 45_000 + 32_000}
        assert service.owed(s, net["a"], net["h1"]) == 77_000
        (row,) = service.consignments(s, KEEPER_A, net["a"])
        assert (row["remaining"], row["owed_to_household_fen"]) == (0, 77_000)
        paid = service.pay_household(s, KEEPER_A, net["a"], net["h1"], key="p1", day=day)
        assert service.pay_household(s, KEEPER_A, net["a"], net["h1"], key="p1",
                                     day=day).id == paid.id
        assert service.pay_household(s, KEEPER_A, net["a"], net["h1"], key="p2", day=day) is None
        assert service.owed(s, net["a"], net["h1"]) == 0
        assert balance(s, service.consignment_account(net["a"])) == 0
        # Handing over the cash is no new income: the sales already counted.
        assert attributed_income(s, 2024)[net["h1"]] == {"industry": 77_000}
        with pytest.raises(NotFound):
            service.sell(s, KEEPER_B, net["b"], c.id, key="s9", quantity=1, sold_on=day)


def test_the_api_with_role_checks(db_url, net):
    from ecpa.api.app import create_app

    client = TestClient(create_app())
    officer, keeper_a, keeper_b = (login(client, u) for u in ("officer", "keeper_a", "keeper_b"))
    cadre = login(client, "cadre")
    assert client.get(f"/api/stations?county={COUNTY}").status_code == 401
    r = client.get(f"/api/stations?county={COUNTY}", headers=cadre)
    assert r.status_code == 200 and r.json()["active_stations"]["village"] == 2
    assert client.get(f"/api/stations/{net['a']}", headers=cadre).json()["keeper_username"] == "keeper_a"
    assert client.get("/api/stations/999999", headers=cadre).status_code == 404
    assert client.post("/api/stations", json={"region_code": COUNTY, "name": "x"},
                       headers=keeper_a).status_code == 403
    r = client.patch(f"/api/stations/{net['b']}", json={"commission_bp": 1500}, headers=officer)
    assert r.status_code == 200 and r.json()["commission_bp"] == 1500
    assert client.patch(f"/api/stations/{net['b']}", json={"commission_bp": 1500},
                        headers=keeper_b).status_code == 403
    zone = {"fee_fen": 1000, "days": 3, "per_kg_fen": 200}
    assert client.put(f"/api/stations/zones/{COUNTY}/village", json=zone,
                      headers=keeper_a).status_code == 403
    bad = client.put(f"/api/stations/zones/{COUNTY}/village", json={**zone, "fee_fen": 10.5},
                     headers=officer)
    assert bad.status_code == 422 and "fee_fen" in bad.text
    assert client.put(f"/api/stations/zones/{COUNTY}/moon", json=zone,
                      headers=officer).status_code == 422
    assert client.put(f"/api/stations/zones/{COUNTY}/village", json=zone,
                      headers=officer).status_code == 200
    assert client.get(f"/api/stations/zones/{COUNTY}", headers=officer).json()[0]["fee_fen"] == 1000
    r = client.get(f"/api/stations/quote?ship_to={VILLAGE_A}&weight_g=2500", headers=cadre)
    assert r.json() == {"fee_fen": 1400, "days": 3, "pickup_station_id": None, "zone": "village"}
    r = client.get(f"/api/stations/quote?ship_to={TOWNSHIP}&weight_g=1", headers=cadre)
    assert r.status_code == 422 and TOWNSHIP in r.json()["message"]
    item = {"household_id": net["h1"], "key": "r1", "product": "土豆", "quantity": 100,
            "unit": "jin", "price_fen": 120, "received_on": "2024-10-01"}
    assert client.post(f"/api/stations/{net['a']}/consignments", json=item,
                       headers=keeper_b).status_code == 403
    r = client.post(f"/api/stations/{net['a']}/consignments", json=item, headers=keeper_a)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    r = client.post(f"/api/stations/{net['a']}/consignments/{cid}/sales",
                    json={"key": "s1", "quantity": 40, "sold_on": "2024-10-02"}, headers=keeper_a)
    assert r.status_code == 201 and r.json()["amount_fen"] == 4_800
    r = client.post(f"/api/stations/{net['a']}/consignments/{cid}/sales",
                    json={"key": "s2", "quantity": 61, "sold_on": "2024-10-02"}, headers=keeper_a)
    assert r.status_code == 422 and "only 60 jin" in r.json()["message"]
    assert client.get(f"/api/stations/{net['a']}/consignments",
                      headers=keeper_b).status_code == 403
    r = client.post(f"/api/stations/{net['a']}/payouts",
                    json={"household_id": net["h1"], "key": "p1", "date": "2024-10-03"},
                    headers=keeper_a)
    assert r.status_code == 200 and r.json()["owed_fen"] == 0 and r.json()["transaction_id"]
    with session_scope(db_url) as s:
        oid = _order(s, "keeper_a", 20_000)
    body = {"household_id": net["h3"], "order_id": oid}
    assert client.post(f"/api/stations/{net['a']}/assisted-orders", json=body,
                       headers=keeper_a).status_code == 403              # another village
    r = client.post(f"/api/stations/{net['a']}/assisted-orders",
                    json={**body, "household_id": net["h1"]}, headers=keeper_a)
    assert r.status_code == 201 and r.json()["commission_fen"] == 2_000
    r = client.post(f"/api/stations/assisted-orders/{oid}/commission", headers=officer)
    assert r.status_code == 409                                          # not completed yet


def test_cli_sets_a_zone_and_quotes(db_url, net):
    from ecpa.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["stations", "zone", TOWNSHIP, "village", "--fee-fen", "750",
                            "--days", "4", "--pickup"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["stations", "quote", VILLAGE_A, "800"])
    assert r.exit_code == 0 and "7.50 yuan" in r.output and f"pickup at station {net['a']}" in r.output
    r = runner.invoke(app, ["stations", "quote", COUNTY, "800"])
    assert r.exit_code == 2 and f"no delivery zone covers {COUNTY}" in r.output
    r = runner.invoke(app, ["stations", "list", COUNTY])
    assert r.exit_code == 0 and "keeper_a" in r.output
