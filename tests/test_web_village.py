"""The village platform on a cheap phone (seed 001 §IV.D): someone scans the village's QR
code, sees its products and a farm stay, asks the experts, the county answers in /advice
and the asker reads the answer; a station keeper places an assisted purchase for a
villager and pays it with the villager's cash through the gateway; a keeper of another
village is refused; a cooperative manager runs the buy-back settlement of running
chickens.  The advice API is region-scoped, the asker's phone stored protected."""

from __future__ import annotations

import re
from datetime import date

import pytest
from conftest import COUNTY, PW, VILLAGE_A, VILLAGE_B, login
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_support import shot, transfer_size

from ecpa.advice.models import AdviceQuestion
from ecpa.db import session_scope
from ecpa.ledger.service import balance
from ecpa.market import catalog
from ecpa.market.models import Order, OrderState, Payment, PaymentState, Sku
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.programs.farming import (
    RUNNING_CHICKENS,
    buy_back,
    create_program,
    enrol,
    report_loss,
)
from ecpa.regions.models import Region
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind
from ecpa.stations import service as stations
from ecpa.stations.models import AssistedOrder

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
BUDGET = 100 * 1024
START = date(2024, 3, 1)  # running chickens: a 160-day cycle ending on 2024-08-08


@pytest.fixture
def town(db_url, register_file):
    """Village A with its story, a household's honey, a farm stay and fertiliser for sale;
    delivery zones (couriers stop at the township: pickup at the village station); a
    station with its keeper in each village; a running-chickens program with two
    households enrolled and their chickens bought back."""
    with session_scope(db_url) as s:
        import_register(s, ADMIN, register_file)
        h1, h2, h3 = s.scalars(select(Household.id).order_by(Household.number)).all()
        create_user(s, ADMIN, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ADMIN, "officer2", PW, Role.COUNTY_OFFICER, "620102")
        create_user(s, ADMIN, "coop", PW, Role.COOPERATIVE_MANAGER, COUNTY)
        create_user(s, ADMIN, "coop2", PW, Role.COOPERATIVE_MANAGER, "620102")
        for name, village in (("keeper_a", VILLAGE_A), ("keeper_b", VILLAGE_B)):
            create_user(s, ADMIN, name, PW, Role.STATION_KEEPER, village)
        s.get(Region, VILLAGE_A).profile = {
            "story": "东关村在青泥岭下，家家户户养蜂种核桃。",
            "scenery": [{"title": "青泥岭古道", "text": "春天满山杜鹃，秋天核桃飘香。"}]}
        honey_seller = catalog.create_seller(s, OFFICER, kind="household", name="王家蜂蜜",
                                             region_code=VILLAGE_A, household_id=h1)
        catalog.certify(s, OFFICER, honey_seller.id, "a registered poor household")
        honey = catalog.add_product(s, OFFICER, honey_seller.id, name="土蜂蜜", category="food",
                                    origin_code=VILLAGE_A, description="山里的百花蜜")
        catalog.add_sku(s, OFFICER, honey.id, code="HONEY-500", title="500 g", unit="jar",
                        weight_g=600, price_fen=6_800, stock=20)
        stay = catalog.add_product(s, OFFICER, honey_seller.id, name="王家农家乐",
                                   category="tourism", origin_code=VILLAGE_A,
                                   description="住农家院，吃土鸡")
        catalog.add_sku(s, OFFICER, stay.id, code="STAY-1N", title="一晚含早餐", unit="night",
                        weight_g=0, price_fen=12_000, stock=5)
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="跑步鸡合作社",
                            credit_code="93621221MA7K123451", region_code=COUNTY)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add_all([coop, ent])
        s.flush()
        farm_shop = catalog.create_seller(s, OFFICER, kind="cooperative", name="县农资合作社",
                                          region_code=COUNTY, organisation_id=coop.id)
        fertiliser = catalog.add_product(s, OFFICER, farm_shop.id, name="复合肥",
                                         category="means_of_production", origin_code=COUNTY)
        sku = catalog.add_sku(s, OFFICER, fertiliser.id, code="NPK-40", title="40 kg",
                              unit="bag", weight_g=40_000, price_fen=12_000, stock=30)
        stations.set_zone(s, OFFICER, COUNTY, "village", fee_fen=500, days=3,
                          base_weight_g=100_000, door_delivery=False)
        a = stations.create_station(s, OFFICER, VILLAGE_A, "东关村服务站", "keeper_a", "0939-3212345")
        stations.create_station(s, OFFICER, VILLAGE_B, "西关村服务站", "keeper_b")
        program = create_program(s, ADMIN, **RUNNING_CHICKENS, start_date=START,
                                 cooperative_id=coop.id, enterprise_id=ent.id)
        enrol(s, ADMIN, program.id, h1, 100, START)
        enrol(s, ADMIN, program.id, h2, 50, START)
        end = date(2024, 8, 8)
        buy_back(s, ADMIN, program.id, h1, "h1-all", end, 100, "A")  # 100 × 100 yuan
        report_loss(s, ADMIN, program.id, h2, 40)
        buy_back(s, ADMIN, program.id, h2, "h2-rest", end, 10, "B")  # 10 × 90 yuan
        return {"h1": h1, "h2": h2, "h3": h3, "honey": honey.id, "stay": stay.id,
                "fertiliser_sku": sku.id, "station": a.id, "program": program.id}


def submit(page, selector: str) -> None:
    """Click a form's button and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def sign_in(page, url: str, username: str, then: str) -> None:
    for _attempt in (1, 2):
        page.goto(f"{url}/signin?next={then}")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PW)
        submit(page, "form[action='/signin'] button")
        if "/signin" not in page.url or "class=\"error\"" in page.content():
            break
        # Back at the form with no error: SessionDep (request scope) commits the new token
        # only after the redirect has gone out, and a fast browser can ask before it is
        # there (then the session forgets the token).  Reported to the lead; sign in again.
        page.wait_for_timeout(300)
    assert "/signin" not in page.url, page.inner_text("main")


def test_scan_the_village_qr_ask_the_experts_and_read_the_answer(town, live_server, phone, browser,
                                                                 db_url):
    page = phone
    page.goto(f"{live_server.url}/villages/{VILLAGE_A}")  # what the QR code opens
    html = page.content()
    assert "东关村" in html and "家家户户养蜂" in html and "青泥岭古道" in html
    assert "土蜂蜜" in html and "王家农家乐" in html  # its products and its farm stay
    assert "风景与农家乐" in html and "问专家" in html  # Chinese, from the phone's language
    shot(page, "village-page")
    submit(page, f"a[href='/products/{town['stay']}']")
    assert "住农家院" in page.content()
    page.go_back()

    qr = page.request.get(f"{live_server.url}/villages/{VILLAGE_A}/qr.svg")
    assert qr.status == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in qr.text() and "东关村" in qr.text()

    page.select_option("select[name=category]", "farming")
    page.fill("textarea[name=text]", "跑步鸡冬天怎么防鸡瘟？")
    page.fill("input[name=contact_name]", "王大山")
    page.fill("input[name=contact_phone]", "13812345678")
    submit(page, f"form[action='/villages/{VILLAGE_A}/ask#ask'] button")
    assert "/advice/A-" in page.url
    reference = re.search(r"A-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", page.content()).group(0)
    assert "138****5678" in page.content() and "13812345678" not in page.content(), \
        page.inner_text("main")
    assert "尚未答复" in page.content()
    shot(page, "village-question")

    with session_scope(db_url) as s:  # the phone is stored protected, never in clear
        q = s.scalar(select(AdviceQuestion).where(AdviceQuestion.reference == reference))
        assert (q.county_code, q.contact_phone_masked) == (COUNTY, "138****5678")
        assert b"13812345678" not in q.contact_phone_enc

    county = browser.new_context(viewport={"width": 1024, "height": 800}, locale="zh-CN")
    officer = county.new_page()
    sign_in(officer, live_server.url, "officer", "/advice")
    assert officer.url.endswith("/advice")
    assert "跑步鸡冬天怎么防鸡瘟" in officer.content() and "138****5678" in officer.content()
    shot(officer, "village-advice-queue")
    officer.fill(f"form[action='/advice/{q.id}/answer'] textarea", "入冬前接种新城疫疫苗，鸡舍保暖通风。")
    submit(officer, f"form[action='/advice/{q.id}/answer'] button")
    assert reference in officer.content() and "入冬前接种" in officer.content()
    county.close()

    page.goto(f"{live_server.url}/advice/{reference.lower().replace('-', '')}")  # as typed
    assert "入冬前接种新城疫疫苗" in page.content() and "成县" in page.content()
    assert "officer" not in page.content()  # the answering officer is not named in public
    shot(page, "village-answer")


def test_the_keeper_places_an_assisted_purchase_and_pays_with_the_villagers_cash(
        town, live_server, phone, browser, db_url):
    page = phone
    sign_in(page, live_server.url, "keeper_a", "/station")
    assert page.url.endswith("/station")
    html = page.content()
    assert "东关村服务站" in html and "6212210001" in html and "王*山" in html
    assert "6212210003" not in html  # village B's household is not served here
    assert "王大山" not in html  # head names masked
    shot(page, "station-home")

    page.select_option("select[name=household_id]", str(town["h1"]))
    page.fill(f"input[data-sku='{town['fertiliser_sku']}']", "2")
    submit(page, "form[action='/station/purchase'] button")
    html = page.content()
    assert "复合肥" in html and "¥240.00" in html and "¥245.00" in html  # 2 bags + delivery
    assert "¥24.00" in html  # the station's 10 % commission
    shot(page, "station-confirm")
    submit(page, "form[action='/station/purchase/confirm'] button")
    assert re.search(r"/station/orders/\d+$", page.url)
    order_id = int(page.url.rsplit("/", 1)[1])
    html = page.content()
    assert "代购佣金" in html and "¥24.00" in html and "东关村服务站" in html
    shot(page, "station-order")

    submit(page, f"form[action='/station/orders/{order_id}/pay'] button")  # cash taken
    assert "/station/gateway/" in page.url and "¥245.00" in page.content()
    submit(page, "form[action^='/station/gateway/'] button")
    assert page.url.endswith(f"/station/orders/{order_id}?paid=1")
    assert "已付款" in page.content()
    shot(page, "station-paid")

    with session_scope(db_url) as s:
        order = s.get(Order, order_id)
        assert (order.state, order.assisted_by, order.buyer, order.total_fen) == (
            OrderState.PAID, "keeper_a", "keeper_a", 24_500)
        assert order.pickup_station_id == town["station"]  # couriers stop at the township
        a = s.scalar(select(AssistedOrder).where(AssistedOrder.order_id == order_id))
        assert (a.household_id, a.commission_fen, a.paid_at) == (town["h1"], 2_400, None)
        payment = s.scalar(select(Payment).where(Payment.order_id == order_id))
        assert payment.state is PaymentState.CAPTURED and payment.amount_fen == 24_500
        assert balance(s, "market:in-transit") == -24_500  # held until the villager has it
        assert s.get(Sku, town["fertiliser_sku"]).stock == 28

    # A keeper of another village: not this order, not this village's households.
    other = browser.new_context(viewport={"width": 360, "height": 740}, locale="zh-CN")
    keeper_b = other.new_page()
    sign_in(keeper_b, live_server.url, "keeper_b", "/station")
    assert "西关村服务站" in keeper_b.content() and "6212210001" not in keeper_b.content()
    response = keeper_b.goto(f"{live_server.url}/station/orders/{order_id}")
    assert response.status == 403
    shot(keeper_b, "station-refused")
    other.close()


def _signed_in_client(username: str) -> tuple[TestClient, str]:
    from ecpa.api.app import create_app
    from ecpa.web.security import limiter
    limiter._fails.clear()
    client = TestClient(create_app())
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text).group(1)
    r = client.post("/signin", data={"username": username, "password": PW, "csrf": token},
                    follow_redirects=False)
    assert r.status_code == 303
    return client, token


def test_a_keeper_of_another_village_is_refused(town, db_url):
    client, token = _signed_in_client("keeper_b")
    form = {"csrf": token, "household_id": town["h1"], "key": "k-1",
            "sku": [town["fertiliser_sku"]], "qty": ["1"]}
    refused = client.post("/station/purchase/confirm", data=form)
    assert refused.status_code == 403 and "<html" in refused.text
    refused = client.post("/station/purchase", data=form)
    assert refused.status_code == 403 or "6212210001" not in refused.text
    assert client.post("/station/purchase/confirm", data={**form, "csrf": "forged"}).status_code == 403
    assert client.get("/cooperative").status_code == 403  # not a cooperative manager
    assert client.get("/advice").status_code == 403  # nor the county
    with session_scope(db_url) as s:
        assert s.scalar(select(Order.id)) is None  # nothing ordered, no stock taken
        assert s.get(Sku, town["fertiliser_sku"]).stock == 30
    anonymous = TestClient(client.app)
    r = anonymous.get("/station", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=/station")


def test_the_cooperative_manager_runs_the_buy_back_settlement(town, live_server, phone, db_url):
    page = phone
    sign_in(page, live_server.url, "coop", "/cooperative")
    assert page.url.endswith("/cooperative")
    html = page.content()
    assert "running chickens" in html and "跑步鸡合作社" in html
    assert "¥10,500.00" in html and "¥10,900.00" in html  # advanced, bought back
    shot(page, "coop-home")

    page.fill("input[name=day]", "2024-08-01")  # before the cycle ends: refused, explained
    submit(page, "form[action='/cooperative/settlement'] button")
    assert "cycle ends" in page.content()
    page.select_option("select[name=program_id]", str(town["program"]))
    page.fill("input[name=day]", "2024-08-08")
    submit(page, "form[action='/cooperative/settlement'] button")
    html = page.content()
    assert "6212210001" in html and "6212210002" in html
    assert "¥3,000.00" in html  # h1: 10,000 bought − 7,000 advanced
    assert "¥2,600.00" in html  # h2: its loss covered by the guarantee
    assert "2 户本次结算" in html
    shot(page, "coop-settlement")

    page.goto(f"{live_server.url}/cooperative")  # run again: nobody is paid twice
    page.fill("input[name=day]", "2024-08-08")
    submit(page, "form[action='/cooperative/settlement'] button")
    assert "0 户本次结算" in page.content()
    with session_scope(db_url) as s:
        assert balance(s, f"hh:{town['h1']}:farm:{town['program']}") == 0


def test_a_manager_elsewhere_cannot_settle_this_cooperatives_program(town, db_url):
    client, token = _signed_in_client("coop2")
    assert "running chickens" not in client.get("/cooperative").text
    r = client.post("/cooperative/settlement", data={"csrf": token, "program_id": town["program"],
                                                     "day": "2024-08-08"})
    assert r.status_code == 403


def test_the_advice_api_is_region_scoped(town, db_url):
    from ecpa.advice import service as advice
    from ecpa.api.app import create_app
    with session_scope(db_url) as s:
        q = advice.ask(s, VILLAGE_B, category="legal", text="土地流转合同没到期被收回怎么办？",
                       contact_phone="159-0000-1111")
        qid, ref = q.id, q.reference
        with pytest.raises(Exception, match="unknown category"):
            advice.ask(s, VILLAGE_B, category="weather", text="?")
    client = TestClient(create_app())
    officer, elsewhere = login(client, "officer"), login(client, "officer2")
    listed = client.get(f"/api/advice?region={COUNTY}", headers=officer).json()
    assert [x["reference"] for x in listed["items"]] == [ref]
    assert listed["items"][0]["contact_phone"] == "159****1111"
    assert client.get(f"/api/advice?region={COUNTY}", headers=elsewhere).status_code == 403
    assert client.get("/api/advice", headers=elsewhere).json()["total"] == 0
    assert client.post(f"/api/advice/{qid}/answer", json={"answer": "x"},
                       headers=elsewhere).status_code == 403
    assert client.get(f"/api/advice?region={COUNTY}",
                      headers=login(client, "keeper_a")).status_code == 403
    r = client.post(f"/api/advice/{qid}/answer", json={"answer": "合同未到期，可申请村委会调解。"},
                    headers=officer)
    assert r.status_code == 200 and r.json()["answered_by"] == "officer"
    again = client.post(f"/api/advice/{qid}/answer", json={"answer": "另一个答复"}, headers=officer)
    assert again.status_code == 409
    revealed = client.get(f"/api/advice/{qid}/contact-phone", headers=officer).json()
    assert revealed["contact_phone"] == "15900001111"  # to call back: the county only, audited
    public = client.get(f"/api/advice/by-reference/{ref}").json()
    assert public["answer"].startswith("合同未到期") and public["contact_phone"] == "159****1111"
    assert client.get("/api/advice/by-reference/A-2026-XXXX-XXXX").status_code == 404
    assert client.get(f"/api/advice?region={COUNTY}&answered=false",
                      headers=officer).json()["total"] == 0


def test_the_village_page_fits_the_budget(town, live_server, phone):
    size = transfer_size(phone, f"{live_server.url}/villages/{VILLAGE_A}")
    assert 0 < size < BUDGET, size
    assert transfer_size(phone, f"{live_server.url}/villages/{COUNTY}") < BUDGET  # not a village


def test_a_villagers_grievance_filed_at_the_station(town, db_url):
    from ecpa.grievances.models import FilerKind, Grievance
    client, token = _signed_in_client("keeper_a")
    form = {"csrf": token, "household_id": town["h2"], "category": "money_not_received",
            "text": "产业补助还没到账。", "contact_name": "赵金花", "contact_phone": "13900002222"}
    r = client.post("/station/grievance", data=form)
    assert r.status_code == 200
    reference = re.search(r"G-\d{4}-[0-9A-Z]{4}-[0-9A-Z]{4}", r.text).group(0)
    with session_scope(db_url) as s:
        g = s.scalar(select(Grievance).where(Grievance.reference == reference))
        assert (g.household_id, g.filer_kind, g.filed_by, g.region_code) == (
            town["h2"], FilerKind.STATION, "keeper_a", VILLAGE_A)
        assert g.contact_phone_masked == "139****2222"
    missing = client.post("/station/grievance", data={**form, "contact_name": ""})
    assert missing.status_code == 422 and "contact_name" in missing.text
    other, token_b = _signed_in_client("keeper_b")
    refused = other.post("/station/grievance", data={**form, "csrf": token_b})
    assert refused.status_code == 403  # not a household of its village
