"""The officials' pages: the county officer signs in and sees the county at a glance
(counts by village, the tile grid, the multidimensional index and its drivers, alerts,
program progress, traced income, sales by pavilion), opens a household with its
numbers masked, imports a bad register file and downloads its error report, then a good
one, and works a case; a village cadre is refused another village's household.  A
TestClient test checks that the SVG chart and the tile grid show the assessment's
numbers."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import (
    COUNTY,
    HEADER,
    PW,
    VILLAGE_A,
    VILLAGE_B,
    good_rows,
    make_id,
    write_csv,
)
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_support import shot

from ecpa.db import session_scope
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household

ADMIN = system_actor("test")
OFFICER = Actor("officer", Role.COUNTY_OFFICER, COUNTY)
YEAR = 2024
EXTRA = ["food_secure", "clothing_secure", "medical_expense"]


@pytest.fixture
def county(db_url, tmp_path):
    """The three households of the test register (the exited one food-insecure with
    heavy medical bills, so the assessment flags it), users for each official role, a
    farming program with a buy-back (traced income), and a completed order."""
    from ecpa.market import catalog
    from ecpa.market.models import Order, OrderLine, OrderState
    from ecpa.programs.farming import RUNNING_CHICKENS, buy_back, create_program, enrol
    from ecpa.registry.models import Organisation, OrganisationKind
    from ecpa.web.dashboard import forget_measurements
    forget_measurements()
    rows = good_rows()
    rows[3].update(food_secure="no", clothing_secure="yes", medical_expense="12000")
    path = write_csv(tmp_path / "register.csv", rows, HEADER + EXTRA)
    with session_scope(db_url) as s:
        assert not import_register(s, ADMIN, path).errors
        h1, h2, h3 = s.scalars(select(Household.id).order_by(Household.number)).all()
        for name, role, region in [("officer", Role.COUNTY_OFFICER, COUNTY),
                                   ("cadre_a", Role.VILLAGE_CADRE, VILLAGE_A),
                                   ("cadre_b", Role.VILLAGE_CADRE, VILLAGE_B),
                                   ("analyst", Role.ANALYST, None)]:
            create_user(s, ADMIN, name, PW, role, region)
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="跑步鸡合作社",
                            credit_code="93621221MA7K123451", region_code=COUNTY)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add_all([coop, ent])
        s.flush()
        program = create_program(s, ADMIN, **RUNNING_CHICKENS, start_date=date(YEAR, 3, 1),
                                 cooperative_id=coop.id, enterprise_id=ent.id)
        enrol(s, ADMIN, program.id, h1, 100, date(YEAR, 3, 1))
        enrol(s, ADMIN, program.id, h3, 50, date(YEAR, 3, 1))
        buy_back(s, ADMIN, program.id, h1, "d1", date(YEAR, 8, 8), 60, "A")  # 60 × 100 yuan
        seller = catalog.create_seller(s, OFFICER, kind="household", name="王家蜂蜜",
                                       region_code=VILLAGE_A, household_id=h1, manager_username="cadre_a")
        catalog.certify(s, OFFICER, seller.id, "a registered poor household")
        honey = catalog.add_product(s, OFFICER, seller.id, name="土蜂蜜", category="food",
                                    origin_code=VILLAGE_A, description="山里的百花蜜")
        sku = catalog.add_sku(s, OFFICER, honey.id, code="HONEY-500", title="500 g", unit="jar",
                              weight_g=600, price_fen=6_800, stock=20)
        catalog.set_pavilion(s, OFFICER, COUNTY, "成县特色馆", "核桃之乡。", [honey.id])
        now = datetime(YEAR, 9, 1)
        for i, state in enumerate([OrderState.COMPLETED, OrderState.COMPLETED, OrderState.PAID]):
            order = Order(buyer="alice", checkout_key=f"k{i}", state=state, items_fen=13_600,
                          total_fen=13_600, ship_to_code=VILLAGE_B, reserved_until=now + timedelta(minutes=15),
                          created_at=now)
            s.add(order)
            s.flush()
            s.add(OrderLine(order_id=order.id, sku_id=sku.id, seller_id=seller.id, quantity=2,
                            unit_price_fen=6_800, amount_fen=13_600, households=[h1]))
        return {"h1": h1, "h2": h2, "h3": h3, "program": program.id}


def signin(page, url: str, user: str, then: str) -> None:
    page.goto(f"{url}/signin?next={then}")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PW)
    page.click("form[action='/signin'] button")


def client_for(user: str) -> TestClient:
    from ecpa.api.app import create_app
    client = TestClient(create_app())
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text).group(1)
    r = client.post("/signin", data={"username": user, "password": PW, "csrf": token},
                    follow_redirects=False)
    assert r.status_code == 303
    client.csrf = token
    return client


def test_the_officer_sees_the_county_and_opens_a_household(county, live_server, phone):
    page = phone
    signin(page, live_server.url, "officer", "/dashboard")
    assert page.url.endswith("/dashboard")
    html = page.content()
    # The register: one poor, one monitored, one exited household.
    totals = page.inner_text("#totals")
    assert re.search(r"1\s*贫困户", totals) and re.search(r"1\s*监测户", totals) and re.search(r"1\s*已脱贫", totals)
    assert page.locator("svg.tiles a.tile").count() == 2
    assert page.get_attribute(f'a.tile[data-code="{VILLAGE_A}"]', "data-colour") == "red"
    assert page.get_attribute(f'a.tile[data-code="{VILLAGE_B}"]', "data-colour") == "yellow"
    assert "57.1%" in page.inner_text("#mpi")                      # H: 4 of 7 persons
    assert "社会资本" in html and "svg" in html and 'class="chart"' in html
    programs = page.inner_text("#programs")
    assert "running chickens" in programs and "1/2" in programs    # one of two bought back
    # Traced by the ledger: the buy-back (6,000 yuan) less the advances of inputs (7,000
    # and 3,500 yuan), as ecpa.ledger.service.attributed_income counts them.
    assert page.inner_text("#channels-total") == "-¥4,500.00"
    assert "¥272.00" in page.inner_text("#sales")                   # two completed orders
    assert "6212210002" in page.inner_text("#at-risk")              # flagged by the assessment
    assert "结果保留 5 分钟" in html                                   # the cache is said
    shot(page, "dash-county")

    # Act on the assessment: proposals become cases; the officer takes the first step.
    page.click("form[action='/dashboard/proposals'] button")
    assert "纳入监测 1 户" in page.content()
    page.click("#alerts a[href^='/cases/']")
    assert "纳入监测" in page.content()
    page.fill("textarea[name=comment]", "大数据预警，已电话核实")
    page.click("button[value=step]")
    assert "下一步不由您办理" in page.content()                     # the village checks next
    assert "大数据预警，已电话核实" in page.inner_text("#actions")
    shot(page, "dash-case")
    page.goto(live_server.url + "/cases")
    assert "6212210002" in page.inner_text("#cases")
    shot(page, "dash-cases")

    # Down to the village, and into a household: numbers masked.
    page.goto(live_server.url + "/dashboard")
    page.click(f'a.tile[data-code="{VILLAGE_A}"]')
    assert "东关村" in page.locator("h1").inner_text()
    page.click("#households a:has-text('6212210001')")
    text = page.inner_text("main")
    head_id = make_id(date(1968, 4, 2), 1, True)
    assert head_id[:6] + "********" + head_id[-4:] in text and head_id not in page.content()
    assert "138****5678" in text and "13812345678" not in page.content()
    assert "¥11,000.50" in page.inner_text("#incomes")
    assert "-¥1,000.00" in page.inner_text("#ledger") and "产业" in page.inner_text("#ledger")
    assert "贫困户（已识别）" in page.inner_text("#history")
    shot(page, "dash-household")


def test_the_officer_imports_a_bad_register_then_a_good_one(county, live_server, phone, tmp_path):
    page = phone
    signin(page, live_server.url, "officer", "/registry/import")
    bad = good_rows()[:3]
    bad = [dict(r, household_number="6212210009") for r in bad]
    bad[0]["village_code"] = "621221100099"                   # no such village
    bad[1]["id_number"] = bad[1]["id_number"][:-1] + ("0" if bad[1]["id_number"][-1] != "0" else "1")
    page.set_input_files("input[name=file]", str(write_csv(tmp_path / "乡镇上报.csv", bad)))
    page.click("form[action='/registry/import'] button")
    errors = page.inner_text("#errors")
    assert "621221100099" in errors and "unknown village" in errors
    assert "check digit" in errors or "校验" in errors
    shot(page, "dash-import-errors")
    with page.expect_download() as info:
        page.click("#refused a[download]")
    download = info.value
    assert download.suggested_filename == "乡镇上报.errors.csv"
    report = list(csv.reader(io.StringIO(Path(download.path()).read_text(encoding="utf-8-sig"))))
    assert report[0] == ["row", "column", "value", "reason", "household_number"]
    assert any(r[0] == "2" and r[2] == "621221100099" for r in report[1:])

    good = [dict(r, household_number="6212210009") for r in good_rows()[:1]]
    good[0]["id_number"] = make_id(date(1990, 1, 1), 40, True)
    page.set_input_files("input[name=file]", str(write_csv(tmp_path / "good.csv", good)))
    page.click("form[action='/registry/import'] button")
    imported = page.inner_text("#imported")
    assert re.search(r"新增农户: 1", imported) and re.search(r"新增成员: 1", imported)
    shot(page, "dash-import-ok")


def test_a_village_cadre_is_refused_another_villages_household(county, live_server, phone):
    page = phone
    signin(page, live_server.url, "cadre_a", "/dashboard")
    html = page.content()
    assert "东关村" in html and "西关村" not in page.inner_text("#by-village")
    assert "您的角色不显示此项" in html        # no county measurement for a cadre (as in the API)
    shot(page, "dash-cadre")
    response = page.goto(f"{live_server.url}/households/{county['h3']}")  # 西关村
    assert response.status == 403 and "outside your scope" in page.content()
    shot(page, "dash-refused")
    response = page.goto(f"{live_server.url}/households/{county['h1']}")  # 东关村: its own
    assert response.status == 200 and "王大山" in page.content()


def test_chart_and_tiles_show_the_assessment(county, db_url):
    from ecpa.measure.service import assess_region
    with session_scope(db_url) as s:
        result, _ = assess_region(s, OFFICER, COUNTY, YEAR)
    mpi = result.mpi[result.mpi["subgroup"].isna()]
    total = mpi[mpi["level"] == "total"].iloc[0]
    client = client_for("officer")
    page = client.get("/dashboard", headers={"accept-language": "en"}).text
    chart = re.search(r'<svg class="chart".*?</svg>', page, re.DOTALL).group(0)
    bars = {k: float(v) for k, v in re.findall(r'data-key="([a-z_]+)" data-value="([0-9.]+)"', chart)}
    expected = {c.removeprefix("contribution_"): total[c] for c in mpi.columns
                if c.startswith("contribution_") and total[c] > 0}
    assert bars.keys() == expected.keys() and len(bars) >= 3
    for k, v in expected.items():
        assert bars[k] == pytest.approx(v, abs=1e-6)
    # The longest bar is the first driver, and its label is written beside it.
    assert max(bars, key=bars.get) == total["drivers"].split(",")[0]
    assert f"{expected[max(bars, key=bars.get)] * 100:.1f}%" in chart
    tiles = dict(re.findall(r'<a class="tile" href="[^"]+" data-code="(\d+)"(.*?)</a>', page, re.DOTALL))
    assert set(tiles) == {VILLAGE_A, VILLAGE_B}
    for code in (VILLAGE_A, VILLAGE_B):
        h = mpi[(mpi["level"] == "village") & (mpi["code"] == code)].iloc[0]["H"]
        assert f"H {h * 100:.1f}%" in tiles[code]
    assert "1·0·1" in tiles[VILLAGE_A] and "0·1·0" in tiles[VILLAGE_B]  # poor · monitored · exited
    assert f"{total['M0']:.4f}" in page

    # The summary is kept: a second view does not measure again.
    from ecpa.web import dashboard
    kept = dict(dashboard._measured)
    assert len(kept) == 1
    client.get("/dashboard")
    assert dashboard._measured == kept
    client.get("/dashboard?refresh=1")
    assert next(iter(dashboard._measured.values())).at > next(iter(kept.values())).at


def test_rules_of_the_pages(county, tmp_path):
    anonymous = TestClient(__import__("ecpa.api.app", fromlist=["create_app"]).create_app())
    r = anonymous.get("/dashboard", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=/dashboard")
    officer = client_for("officer")
    bad = write_csv(tmp_path / "bad.csv", [dict(good_rows()[0], village_code="621221100099")])
    forged = officer.post("/registry/import", data={"csrf": "forged"},
                          files={"file": ("bad.csv", bad.read_bytes(), "text/csv")})
    assert forged.status_code == 403 and "<html" in forged.text
    refused = officer.post("/registry/import", data={"csrf": officer.csrf},
                           files={"file": ("bad.csv", bad.read_bytes(), "text/csv")})
    assert refused.status_code == 422
    link = re.search(r'href="(/registry/import/errors/[^"]+)"', refused.text).group(1)
    assert officer.get(link).status_code == 200
    assert client_for("cadre_a").get(link).status_code == 404     # only for the user who imported
    assert officer.get("/registry/import/errors/not-a-token").status_code == 404
    # An analyst sees counts, never a household, a case or the import.
    analyst = client_for("analyst")
    page = analyst.get(f"/dashboard?region={COUNTY}")
    assert page.status_code == 200 and 'class="tiles"' in page.text
    assert analyst.get(f"/households/{county['h1']}").status_code == 403
    assert analyst.get("/cases").status_code == 403
    # Another county's officer: refused the county.
    with session_scope() as s:
        create_user(s, ADMIN, "other", PW, Role.COUNTY_OFFICER, "621222")
    assert client_for("other").get(f"/dashboard?region={COUNTY}").status_code == 403
