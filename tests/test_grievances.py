"""Grievances on SQLite and PostgreSQL: filing by the public, a consumer, a station keeper
for a villager and a cadre; routing by category and region (and an administrator's
override); deadlines in working days and escalation of overdue ones; officers acting
only in their scope; public tracking by reference without anyone's personal data;
reopening; the append-only action log; 422s that name the field; the CLI."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from conftest import COUNTY, PW, TOWNSHIP, VILLAGE_A, VILLAGE_B, login
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from ecpa.api.app import create_app
from ecpa.db import get_engine, session_scope, utcnow
from ecpa.errors import Conflict, InvalidInput, PermissionDenied
from ecpa.grievances import service
from ecpa.grievances.models import Grievance, GrievanceAction, Status
from ecpa.market import catalog
from ecpa.market.models import Order, OrderLine, OrderState
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import AuditEntry, Role, User
from ecpa.people.service import create_user
from ecpa.regions.service import import_regions_csv
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
TOWNSHIP2 = "621221101000"
VILLAGE_C = "621221101001"
OTHER_COUNTY = "621202"  # 武都区, Longnan
PHONE = "13900001234"
# Monday 2 March 2026, 10:00 in China.
MONDAY = datetime(2026, 3, 2, 2, 0)


def actor(username: str, role: Role, region: str | None = None) -> Actor:
    return Actor(username, role, region)


TOWN1 = actor("town1", Role.COUNTY_OFFICER, TOWNSHIP)
TOWN2 = actor("town2", Role.COUNTY_OFFICER, TOWNSHIP2)
KEEPER = actor("keeper_a", Role.STATION_KEEPER, VILLAGE_A)
CADRE = actor("cadre", Role.VILLAGE_CADRE, VILLAGE_A)
BUYER = actor("buyer", Role.CONSUMER)


@pytest.fixture
def world(db_url, register_file):
    """Households h1, h2 in village A, h3 in B; a second township with a village; users:
    the county office, a poverty office in each township (county_officer at a township),
    a station keeper, a cadre, a buyer with an order from a cooperative's shop, and an
    officer of another county."""
    with session_scope(db_url) as s:
        import_regions_csv(s, ADMIN, "\n".join([
            "code,name,parent_code,is_poor",
            f"{TOWNSHIP2},店村镇,{COUNTY},no",
            f"{VILLAGE_C},店村,{TOWNSHIP2},no"]))
        import_register(s, ADMIN, register_file)
        h1, h2, h3 = s.scalars(select(Household.id).order_by(Household.number)).all()
        create_user(s, ADMIN, "admin", PW, Role.ADMINISTRATOR)
        create_user(s, ADMIN, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ADMIN, "far", PW, Role.COUNTY_OFFICER, OTHER_COUNTY)
        for name, town in (("town1", TOWNSHIP), ("town2", TOWNSHIP2)):
            # create_user scopes county_officer to counties; a township's poverty office
            # is set up by hand until the role scope allows townships.
            u = create_user(s, ADMIN, name, PW, Role.COUNTY_OFFICER, COUNTY)
            u.region_code = town
        create_user(s, OFFICER, "keeper_a", PW, Role.STATION_KEEPER, VILLAGE_A)
        create_user(s, OFFICER, "cadre", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, OFFICER, "coop", PW, Role.COOPERATIVE_MANAGER, COUNTY)
        create_user(s, ADMIN, "buyer", PW, Role.CONSUMER)
        create_user(s, ADMIN, "buyer2", PW, Role.CONSUMER)
        seller = catalog.create_seller(s, OFFICER, kind="household", name="王家蜂蜜",
                                       region_code=VILLAGE_A, household_id=h1,
                                       manager_username="coop")
        product = catalog.add_product(s, OFFICER, seller.id, name="土蜂蜜", category="food",
                                      origin_code=VILLAGE_A)
        sku = catalog.add_sku(s, OFFICER, product.id, code="HONEY-500", title="500 g jar",
                              unit="jar", weight_g=600, price_fen=6_800, stock=20)
        order = Order(buyer="buyer", checkout_key="k1", state=OrderState.DELIVERED,
                      items_fen=6_800, total_fen=6_800, ship_to_code=COUNTY,
                      reserved_until=utcnow())
        s.add(order)
        s.flush()
        s.add(OrderLine(order_id=order.id, sku_id=sku.id, seller_id=seller.id, quantity=1,
                        unit_price_fen=6_800, amount_fen=6_800))
        return {"h1": h1, "h2": h2, "h3": h3, "order": order.id, "seller": seller.id}


def _client() -> TestClient:
    return TestClient(create_app())


def _g(s, reference: str) -> Grievance:
    return s.scalar(select(Grievance).where(Grievance.reference == reference))


# --- filing ------------------------------------------------------------------------------

def test_filing_by_each_kind_of_filer(db_url, world):
    client = _client()
    # The public form: no sign-in, name and phone optional.
    r = client.post("/api/grievances", json={
        "category": "left_out", "region_code": VILLAGE_B,
        "text": "我家去年因病返贫，没有被评上贫困户。"})
    assert r.status_code == 201, r.text
    public_ref = r.json()["reference"]
    assert r.json()["status"] == "assigned"
    assert public_ref.startswith("G-") and len(public_ref) == len("G-2026-7K3Q-9MXT")
    # A signed-in consumer, with a phone.
    r = client.post("/api/grievances", headers=login(client, "buyer"), json={
        "category": "other", "region_code": COUNTY, "text": "县城服务站周末不开门",
        "contact_name": "张三", "contact_phone": PHONE})
    assert r.status_code == 201, r.text
    consumer_ref = r.json()["reference"]
    # A station keeper for a villager: the villager and the household are named.
    r = client.post("/api/grievances", headers=login(client, "keeper_a"), json={
        "category": "money_not_received", "household_id": world["h1"],
        "contact_name": "王大山", "text": "2025年产业奖补资金未到账"})
    assert r.status_code == 201, r.text
    keeper_ref = r.json()["reference"]
    # A cadre.
    with session_scope(db_url) as s:
        cadre_g = service.file_grievance(s, CADRE, category="wrong_data",
                                         household_id=world["h2"], text="家庭人口数录错")
        cadre_ref = cadre_g.reference
    with session_scope(db_url) as s:
        kinds = {ref: (_g(s, ref).filer_kind.value, _g(s, ref).filed_by, _g(s, ref).region_code)
                 for ref in (public_ref, consumer_ref, keeper_ref, cadre_ref)}
        assert kinds == {public_ref: ("public", None, VILLAGE_B),
                         consumer_ref: ("consumer", "buyer", COUNTY),
                         keeper_ref: ("station", "keeper_a", VILLAGE_A),  # the household's
                         cadre_ref: ("cadre", "cadre", VILLAGE_A)}
        g = _g(s, consumer_ref)
        # The phone is stored protected and masked, never in clear.
        assert g.contact_phone_masked == "139****1234" and PHONE.encode() not in g.contact_phone_enc
        log = s.scalars(select(GrievanceAction.action).where(
            GrievanceAction.grievance_id == g.id).order_by(GrievanceAction.id)).all()
        assert [a.value for a in log] == ["file", "assign"]

        # The keeper must name the villager, and the household unless it was left out.
        with pytest.raises(InvalidInput, match="contact_name") as e:
            service.file_grievance(s, KEEPER, category="wrong_data", household_id=world["h1"],
                                   text="x")
        assert e.value.detail["field"] == "contact_name"
        with pytest.raises(InvalidInput) as e:
            service.file_grievance(s, KEEPER, category="wrong_data", contact_name="王大山",
                                   region_code=VILLAGE_A, text="x")
        assert e.value.detail["field"] == "household_id"
        left_out = service.file_grievance(s, KEEPER, category="left_out", contact_name="李四",
                                          region_code=VILLAGE_A, text="未被识别")
        assert left_out.household_id is None
        # …and only for the villagers of its station.
        with pytest.raises(PermissionDenied, match="outside your scope"):
            service.file_grievance(s, KEEPER, category="wrong_data", contact_name="陈铁柱",
                                   household_id=world["h3"], text="x")


def test_product_complaint_goes_to_the_operator_and_the_seller(db_url, world):
    client = _client()
    body = {"category": "product_complaint", "order_id": world["order"], "text": "蜂蜜瓶子碎了"}
    # Anonymous: no order can be complained of without signing in as its buyer.
    assert client.post("/api/grievances", json=body).status_code == 403
    # Someone else's order looks like no order at all.
    r = client.post("/api/grievances", headers=login(client, "buyer2"), json=body)
    assert r.status_code == 422 and r.json()["detail"]["field"] == "order_id"
    r = client.post("/api/grievances", headers=login(client, "buyer"), json=body)
    assert r.status_code == 201, r.text
    ref = r.json()["reference"]
    with session_scope(db_url) as s:
        g = _g(s, ref)
        assert (g.office_level.value, g.office_role, g.office_region_code) == (
            "national", "administrator", None)
        assert g.seller_id == world["seller"] and g.region_code == VILLAGE_A
        gid = g.id
    # The seller sees it in its queue and may answer, but not resolve it.
    coop = login(client, "coop")
    assert [q["reference"] for q in client.get("/api/grievances/queue", headers=coop).json()] == [ref]
    r = client.post(f"/api/grievances/{gid}/actions", headers=coop,
                    json={"action": "comment", "note": "已补发", "public": True})
    assert r.status_code == 200, r.text
    r = client.post(f"/api/grievances/{gid}/actions", headers=coop,
                    json={"action": "resolve", "note": "done"})
    assert r.status_code == 403
    admin = login(client, "admin")
    assert ref in [q["reference"] for q in client.get("/api/grievances/queue", headers=admin).json()]
    r = client.post(f"/api/grievances/{gid}/actions", headers=admin,
                    json={"action": "resolve", "note": "卖家已补发一瓶"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"


# --- routing -----------------------------------------------------------------------------

def test_routing_by_category_and_region(db_url, world):
    with session_scope(db_url) as s:
        def office(category, region, **kw):
            g = service.file_grievance(s, None, category=category, region_code=region,
                                       text="…", now=MONDAY, **kw)
            return g.office_level.value, g.office_region_code, g.office_role

        # Targeting and data: the township's poverty office.
        assert office("left_out", VILLAGE_A) == ("township", TOWNSHIP, "county_officer")
        assert office("wrongly_included", VILLAGE_C) == ("township", TOWNSHIP2, "county_officer")
        assert office("wrong_data", TOWNSHIP) == ("township", TOWNSHIP, "county_officer")
        # Filed against the county as a whole: there is no township to send it to.
        assert office("wrong_data", COUNTY) == ("county", COUNTY, "county_officer")
        # Money: the county; anything else: the county.
        assert office("money_not_received", VILLAGE_A) == ("county", COUNTY, "county_officer")
        assert office("other", VILLAGE_C) == ("county", COUNTY, "county_officer")
        # A township without an office of its own: the county's.
        s.scalar(select(User).where(User.username == "town2")).active = False
        s.flush()
        assert office("left_out", VILLAGE_C) == ("county", COUNTY, "county_officer")
        # A county without any office: the administrators.
        assert office("left_out", "621222") == ("national", None, "administrator")  # 康县

        # An administrator reroutes wrong data in this county to the county, 5 days.
        with pytest.raises(PermissionDenied):
            service.set_route(s, OFFICER, "wrong_data", office_level="county",
                              office_role="county_officer", deadline_days=5)
        service.set_route(s, ADMIN, "wrong_data", office_level="county",
                          office_role="county_officer", deadline_days=5, region_prefix=COUNTY)
        # …and, more specific, wrong data filed at village level in this township to the township.
        service.set_route(s, ADMIN, "wrong_data", office_level="township",
                          office_role="county_officer", deadline_days=20,
                          region_prefix=TOWNSHIP[:9], region_level="village")
        assert office("wrong_data", VILLAGE_C) == ("county", COUNTY, "county_officer")
        assert office("wrong_data", TOWNSHIP) == ("county", COUNTY, "county_officer")
        assert office("wrong_data", VILLAGE_A) == ("township", TOWNSHIP, "county_officer")
        g = service.file_grievance(s, None, category="wrong_data", region_code=VILLAGE_C,
                                   text="…", now=MONDAY)
        assert service.china_date(g.due_at).isoformat() == "2026-03-09"  # 5 working days
        with pytest.raises(InvalidInput) as e:
            service.set_route(s, ADMIN, "wrong_data", office_level="national",
                              office_role="county_officer", deadline_days=5)
        assert e.value.detail["field"] == "office_role"
        table = service.routing_table(s)
        assert sum(r["source"] == "table" for r in table) == 2
        assert {r["category"] for r in table if r["source"] == "default"} == {
            "left_out", "wrongly_included", "wrong_data", "money_not_received",
            "product_complaint", "other"}


def test_routes_api_is_for_administrators(db_url, world):
    client = _client()
    body = {"category": "other", "office_level": "township", "office_role": "county_officer",
            "deadline_days": 10}
    assert client.put("/api/grievances/routes", json=body,
                      headers=login(client, "officer")).status_code == 403
    r = client.put("/api/grievances/routes", json=body, headers=login(client, "admin"))
    assert r.status_code == 200
    assert {"category": "other", "source": "table", "deadline_days": 10}.items() <= r.json()[-1].items()
    r = client.post("/api/grievances", json={"category": "other", "region_code": VILLAGE_A,
                                             "text": "…"})
    with session_scope(db_url) as s:
        assert _g(s, r.json()["reference"]).office_region_code == TOWNSHIP


# --- deadlines and escalation --------------------------------------------------------------

def test_deadline_and_escalation_of_an_overdue_grievance(db_url, world):
    with session_scope(db_url) as s:
        g = service.file_grievance(s, None, category="left_out", region_code=VILLAGE_A,
                                   text="…", now=MONDAY)
        ref = g.reference
        # 15 working days from Monday 2 March: Monday 23 March, end of the day in China.
        assert service.china_date(g.due_at).isoformat() == "2026-03-23"
        assert g.due_at == datetime(2026, 3, 23, 15, 59, 59)
    on_time = datetime(2026, 3, 23, 15, 0)
    late = datetime(2026, 3, 24, 1, 0)
    with session_scope(db_url) as s:
        assert service.escalate_overdue(s, on_time) == {"escalated": [], "flagged": [], "closed": []}
        assert service.queue(s, TOWN1, overdue_only=True, now=late)[0]["reference"] == ref
    with session_scope(db_url) as s:
        assert service.escalate_overdue(s, late)["escalated"] == [ref]
        g = _g(s, ref)
        assert (g.office_level.value, g.office_region_code, g.overdue, g.escalations) == (
            "county", COUNTY, True, 1)
        # The next office gets 5 working days: Tuesday 24 → Tuesday 31 March.
        assert service.china_date(g.due_at).isoformat() == "2026-03-31"
        assert service.queue(s, TOWN1) == []
        assert [q["reference"] for q in service.queue(s, OFFICER)] == [ref]
        # The township office can no longer act on it.
        with pytest.raises(PermissionDenied):
            service.act(s, TOWN1, g.id, "start")
    with session_scope(db_url) as s:
        assert service.escalate_overdue(s, datetime(2026, 4, 1))["escalated"] == [ref]
        g = _g(s, ref)
        assert (g.office_level.value, g.office_role, g.escalations) == ("national", "administrator", 2)
    with session_scope(db_url) as s:
        # The last office: no further level, and no new log entry every day.
        assert service.escalate_overdue(s, datetime(2026, 5, 1)) == {
            "escalated": [], "flagged": [], "closed": []}
        stats = service.stats(s, OFFICER, COUNTY, now=datetime(2026, 5, 1))
        assert (stats["open"], stats["overdue"], stats["resolved_within_deadline"]) == (1, 1, 0)
        assert stats["children"][0]["region_code"] == TOWNSHIP and stats["children"][0]["overdue"] == 1
    with session_scope(db_url) as s:
        t = service.track(s, ref)
        assert t["overdue"] is True and t["office"]["level"] == "national"
        assert [e["action"] for e in t["log"]] == ["file", "assign", "escalate", "escalate"]


# --- scope -------------------------------------------------------------------------------

def test_deadlines_skip_china_s_holidays_and_count_its_shifted_working_days(db_url, world):
    # Filed Friday 26 September 2025, 10:00 China time, 15 working days: Sunday 28
    # September is worked (调休), 1-8 October are the National Day and Mid-Autumn
    # holidays, Saturday 11 October is worked.  Sep 28, 29, 30, Oct 9, 10, 11, 13-17,
    # 20-23: Thursday 23 October (Monday to Friday alone would give Friday 17 October).
    with session_scope(db_url) as s:
        g = service.file_grievance(s, None, category="left_out", region_code=VILLAGE_A,
                                   text="…", now=datetime(2025, 9, 26, 2, 0))
        assert service.china_date(g.due_at).isoformat() == "2025-10-23"
    assert service.add_working_days(date(2026, 2, 13), 1) == date(2026, 2, 14)  # a Saturday worked
    assert service.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 24)  # Spring Festival
    assert not service.is_working_day(date(2026, 10, 1)) and service.is_working_day(date(2026, 3, 2))


def test_an_officer_of_another_township_is_refused(db_url, world):
    with session_scope(db_url) as s:
        gid = service.file_grievance(s, None, category="wrongly_included",
                                     region_code=VILLAGE_A, text="…").id
    client = _client()
    for user in ("town2", "far", "cadre", "keeper_a", "buyer"):
        h = login(client, user)
        r = client.post(f"/api/grievances/{gid}/actions", headers=h,
                        json={"action": "start"})
        assert r.status_code == 403, (user, r.text)
        assert client.get(f"/api/grievances/{gid}", headers=h).status_code == 403, user
        assert client.get("/api/grievances/queue", headers=h).json() == []
    # The township's office works it; the county office, above it, may too.
    town1 = login(client, "town1")
    assert [q["id"] for q in client.get("/api/grievances/queue", headers=town1).json()] == [gid]
    r = client.post(f"/api/grievances/{gid}/actions", headers=town1, json={"action": "start"})
    assert r.status_code == 200 and r.json()["status"] == "in_progress"
    officer = login(client, "officer")
    assert client.get("/api/grievances/queue", headers=officer).json() == []
    assert [q["id"] for q in client.get("/api/grievances/queue?within=true",
                                        headers=officer).json()] == [gid]
    r = client.post(f"/api/grievances/{gid}/actions", headers=officer,
                    json={"action": "comment", "note": "请尽快入户核实"})
    assert r.status_code == 200
    # Stats: the county in scope, another county refused.
    assert client.get(f"/api/grievances/stats?region={COUNTY}", headers=officer).json()["open"] == 1
    assert client.get(f"/api/grievances/stats?region={OTHER_COUNTY}",
                      headers=officer).status_code == 403
    # Handing it to an office that does not cover its region is refused.
    r = client.post(f"/api/grievances/{gid}/actions", headers=officer,
                    json={"action": "assign", "office_region_code": TOWNSHIP2,
                          "office_role": "county_officer"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "office_region_code"
    r = client.post(f"/api/grievances/{gid}/actions", headers=officer,
                    json={"action": "assign", "office_region_code": COUNTY,
                          "office_role": "county_officer"})
    assert r.status_code == 200 and r.json()["office"]["region_code"] == COUNTY


# --- tracking, resolution, reopening -------------------------------------------------------

def test_the_filer_tracks_by_reference_without_seeing_personal_data(db_url, world):
    client = _client()
    r = client.post("/api/grievances", headers=login(client, "keeper_a"), json={
        "category": "wrongly_included", "household_id": world["h2"], "contact_name": "王大山",
        "contact_phone": PHONE, "text": "赵金花家有两套房，不应评为贫困户"})
    ref = r.json()["reference"]
    with session_scope(db_url) as s:
        gid = _g(s, ref).id
    town1 = login(client, "town1")
    client.post(f"/api/grievances/{gid}/actions", headers=town1,
                json={"action": "comment", "note": "赵金花 电话13812345678 待核"})  # internal
    client.post(f"/api/grievances/{gid}/actions", headers=town1,
                json={"action": "start", "note": "已安排入户核实"})
    # No sign-in; any case and without dashes.
    r = _client().get(f"/api/grievances/track/{ref.replace('-', '').lower()}")
    assert r.status_code == 200, r.text
    t = r.json()
    assert t["reference"] == ref and t["status"] == "in_progress"
    assert t["due_on"] and t["office"] == {"level": "township", "role": "county_officer",
                                           "region_code": TOWNSHIP, "region_name": "城关镇"}
    assert [(e["action"], e["by"]) for e in t["log"]] == [
        ("file", "filer"), ("assign", "system"), ("comment", "office"), ("start", "office")]
    assert t["log"][-1]["note"] == "已安排入户核实" and t["log"][2]["note"] == ""
    body = r.text
    for secret in ("赵金花", "王大山", PHONE, "139****1234", "13812345678", "keeper_a", "town1",
                   "两套房", str(world["h2"]) + ","):
        assert secret not in body, secret
    assert _client().get("/api/grievances/track/G-2026-AAAA-AAAA").status_code == 404
    # Those who work it (the township office and the county above it) see the whole
    # grievance with the full phone, to call back; the read is audited.
    officer = login(client, "officer")
    assert client.get(f"/api/grievances/{gid}", headers=officer).json()["contact_phone"] == PHONE
    d = client.get(f"/api/grievances/{gid}", headers=town1).json()
    assert d["contact_phone"] == PHONE and d["household"]["id"] == world["h2"]
    assert d["text"].startswith("赵金花") and len(d["log"]) == 4
    keeper = login(client, "keeper_a")  # the filer
    assert client.get(f"/api/grievances/{gid}", headers=keeper).json()["contact_phone"] == "139****1234"
    with session_scope(db_url) as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.entity == "grievance",
                                                 AuditEntry.actor == "town1")) is not None


def test_resolve_reopen_confirm_and_closing(db_url, world):
    with session_scope(db_url) as s:
        g = service.file_grievance(s, None, category="money_not_received",
                                   region_code=VILLAGE_A, text="…")
        ref, gid = g.reference, g.id
        with pytest.raises(InvalidInput) as e:
            service.act(s, OFFICER, gid, "reject")
        assert e.value.detail["field"] == "note"
        resolved = service.act(s, OFFICER, gid, "resolve", note="已补发 800 元").resolved_at
    client = _client()
    t = client.get(f"/api/grievances/track/{ref}").json()
    assert t["status"] == "resolved" and t["resolution"] == "已补发 800 元"
    assert t["reopen_until"] == service.china_date(resolved + timedelta(days=15)).isoformat()
    # The filer disagrees (within the window): back to the office with a fresh deadline.
    r = client.post(f"/api/grievances/track/{ref}/reopen", json={"reason": "只到账 400 元"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "assigned" and r.json()["resolution"] == ""
    with session_scope(db_url) as s:
        g = _g(s, ref)
        assert (g.reopened, g.office_region_code) == (1, COUNTY) and g.due_at > utcnow()
        with pytest.raises(Conflict, match="only a resolved or rejected"):
            service.confirm(s, ref)
        service.act(s, OFFICER, gid, "reject", note="另 400 元属于 2026 年，尚未发放")
    r = client.post(f"/api/grievances/track/{ref}/confirm")
    assert r.status_code == 200 and r.json()["status"] == "closed"
    assert client.post(f"/api/grievances/track/{ref}/reopen",
                       json={"reason": "x"}).status_code == 409
    assert [e["action"] for e in r.json()["log"]] == [
        "file", "assign", "resolve", "reopen", "reject", "confirm"]

    # Not reopened within the window: the daily job closes it; too late to reopen.
    with session_scope(db_url) as s:
        g2 = service.file_grievance(s, None, category="other", region_code=VILLAGE_A,
                                    text="…", now=MONDAY)
        service.act(s, OFFICER, g2.id, "resolve", note="已处理", now=MONDAY + timedelta(days=1))
        ref2 = g2.reference
        with pytest.raises(Conflict, match="days to reopen have passed"):
            service.reopen(s, ref2, "no", now=MONDAY + timedelta(days=17))
    with session_scope(db_url) as s:
        assert service.escalate_overdue(s, MONDAY + timedelta(days=17))["closed"] == [ref2]
        stats = service.stats(s, OFFICER, COUNTY)
        # One closed after a rejection, one resolved on time.
        assert (stats["filed"], stats["open"], stats["resolved"],
                stats["resolved_within_deadline"]) == (2, 0, 1, 1)


# --- the log -----------------------------------------------------------------------------

def test_the_action_log_is_append_only(db_url, world):
    with session_scope(db_url) as s:
        gid = service.file_grievance(s, None, category="other", region_code=VILLAGE_A,
                                     text="…").id
    with session_scope(db_url) as s:
        entry = s.scalars(select(GrievanceAction).where(GrievanceAction.grievance_id == gid)).first()
        entry.note = "rewritten"
        with pytest.raises(Conflict, match="append-only"):
            s.flush()
        s.rollback()
        entry = s.scalars(select(GrievanceAction).where(GrievanceAction.grievance_id == gid)).first()
        s.delete(entry)
        with pytest.raises(Conflict, match="append-only"):
            s.flush()
        s.rollback()
    # The database refuses it too, whoever asks.
    engine = get_engine(db_url)
    for sql in ("UPDATE grievance_action SET note = 'x'", "DELETE FROM grievance_action"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as c:
            c.execute(text(sql))
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM grievance_action")).scalar() == 2
        # New entries are still welcome.
    with session_scope(db_url) as s:
        service.act(s, OFFICER, gid, "comment", note="ok")
        assert len(s.scalars(select(GrievanceAction).where(
            GrievanceAction.grievance_id == gid)).all()) == 3


# --- bad input ---------------------------------------------------------------------------

# One database for all the cases (a fresh one per case costs seconds each).
BAD_FILINGS = [
    ({"region_code": VILLAGE_A, "text": "x"}, "category"),
    ({"category": "lost", "region_code": VILLAGE_A, "text": "x"}, "category"),
    ({"category": "other", "region_code": VILLAGE_A, "text": "x" * 2001}, "text"),
    ({"category": "other", "region_code": VILLAGE_A, "text": ""}, "text"),
    ({"category": "other", "region_code": VILLAGE_A, "text": "   "}, "text"),
    ({"category": "other", "region_code": "62A", "text": "x"}, "region_code"),
    ({"category": "other", "region_code": "621221999999", "text": "x"}, "region_code"),
    ({"category": "other", "text": "x"}, "region_code"),
    ({"category": "other", "region_code": "620000", "text": "x"}, "region_code"),
    ({"category": "other", "region_code": VILLAGE_A, "text": "x", "contact_name": "名" * 61},
     "contact_name"),
    ({"category": "other", "region_code": VILLAGE_A, "text": "x", "contact_phone": "call me"},
     "contact_phone"),
    ({"category": "product_complaint", "region_code": VILLAGE_A, "text": "x"}, "order_id"),
    ({"category": "other", "region_code": VILLAGE_A, "text": "x", "order_id": 1}, "order_id"),
    ({"category": "other", "region_code": VILLAGE_C, "text": "x", "household_id": 1},
     "household_id"),
    ({"category": "other", "region_code": VILLAGE_A, "text": "x", "household_id": "one"},
     "household_id"),
]


def test_bad_input_gives_422_naming_the_field(db_url, world):
    client = _client()
    for body, field in BAD_FILINGS:
        r = client.post("/api/grievances", json=body)
        assert r.status_code == 422, (body, r.text)
        detail = r.json()["detail"]
        fields = [d["field"] for d in detail] if isinstance(detail, list) else [detail["field"]]
        assert field in fields, (body, r.text)
    with session_scope(db_url) as s:
        assert s.scalar(select(Grievance.id)) is None  # nothing half-written


def test_bad_actions_and_reopen_give_422(db_url, world):
    client = _client()
    ref = client.post("/api/grievances", json={"category": "other", "region_code": VILLAGE_A,
                                               "text": "x"}).json()["reference"]
    with session_scope(db_url) as s:
        gid = _g(s, ref).id
    h = login(client, "officer")
    r = client.post(f"/api/grievances/{gid}/actions", headers=h, json={"action": "delete"})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "action"
    r = client.post(f"/api/grievances/{gid}/actions", headers=h, json={"action": "comment"})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "note"
    r = client.post(f"/api/grievances/track/{ref}/reopen", json={"reason": ""})
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "reason"
    r = client.get("/api/grievances/stats?region=abc", headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "query.region"
    # A bad token is not quietly taken for the anonymous form.
    r = client.post("/api/grievances", headers={"Authorization": "Bearer nope"},
                    json={"category": "other", "region_code": VILLAGE_A, "text": "x"})
    assert r.status_code == 401


# --- the CLI -----------------------------------------------------------------------------

def test_cli_list_and_escalate_overdue(db_url, world):
    from ecpa.cli import app

    with session_scope(db_url) as s:
        ref = service.file_grievance(s, None, category="left_out", region_code=VILLAGE_A,
                                     text="…", now=MONDAY).reference
    runner = CliRunner()
    r = runner.invoke(app, ["grievances", "list", "--region", COUNTY])
    assert r.exit_code == 0, r.output
    assert ref in r.output and "left_out" in r.output
    r = runner.invoke(app, ["grievances", "escalate-overdue", "--now", "2026-03-24T01:00:00"])
    assert r.exit_code == 0, r.output
    assert "escalated 1" in r.output and ref in r.output
    with session_scope(db_url) as s:
        assert _g(s, ref).office_region_code == COUNTY and _g(s, ref).status is Status.ASSIGNED
    r = runner.invoke(app, ["grievances", "list", "--region", "999999"])
    assert r.exit_code == 2 and "unknown region" in r.output
