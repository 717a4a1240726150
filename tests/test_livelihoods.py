"""Training, entrepreneurship and employment (seed 000 §III.A.2–3, §IV), on SQLite and
PostgreSQL: records and their idempotency, the ledger channels, the income written into
the registry, the summary of a small county checked by hand, errors naming the field,
the API with its role checks and the command line."""

from __future__ import annotations

from datetime import date

import pytest
from conftest import COUNTY, PW, VILLAGE_A, VILLAGE_B, login
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecpa.db import session_scope
from ecpa.errors import Conflict, InvalidInput, PermissionDenied
from ecpa.ledger.models import Transaction
from ecpa.ledger.service import attributed_income, balance, write_attributed_income
from ecpa.livelihoods import service as lh
from ecpa.livelihoods.models import JobKind, ShopKind, TrainingTopic, WageBasis
from ecpa.people.access import Actor, system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import (
    Household,
    Income,
    IncomeSource,
    Member,
    Organisation,
    OrganisationKind,
)

ACTOR = system_actor("test")
CADRE_A = Actor("cadre", Role.VILLAGE_CADRE, VILLAGE_A)


@pytest.fixture
def county(db_url, register_file):
    """The register of conftest (households 1 and 2 in village A, 3 in village B; 1 is
    identified poor, 2 exited, 3 monitored) and one registered enterprise."""
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add(ent)
        s.flush()
        m = dict(s.execute(select(Member.name, Member.id)).all())
        h = dict(s.execute(select(Household.number, Household.id)).all())
        return {"ent": ent.id, "m1": m["王大山"], "m2": m["李秀兰"], "m4": m["赵金花"],
                "m5": m["陈铁柱"], "m6": m["陈玉"], "h1": h["6212210001"], "h2": h["6212210002"],
                "h3": h["6212210003"]}


def _training(s, topic, region, start, hours, title="电商培训", external=0):
    return lh.create_training(s, ACTOR, title=title, topic=topic, organiser="县商务局",
                              region_code=region, start_date=start, end_date=start, hours=hours,
                              external_attendees=external).id


def _hand_made_county(s, c) -> dict:
    """2024 in the county, small enough to count by hand (see the summary test)."""
    t1 = lh.create_training(s, ACTOR, title="电商运营班", topic=TrainingTopic.ECOMMERCE_OPERATION,
                            organiser="县商务局", region_code=COUNTY, start_date=date(2024, 3, 1),
                            end_date=date(2024, 3, 5), hours=40, external_attendees=12).id
    t2 = _training(s, TrainingTopic.LIVE_STREAMING, VILLAGE_B, date(2024, 6, 10), 8, "直播带货")
    t3 = _training(s, TrainingTopic.ECOMMERCE_OPERATION, COUNTY, date(2023, 11, 1), 16)
    lh.record_attendance(s, ACTOR, t1, c["m1"], certificate_no="DS-2024-001", subsidy_fen=20_000)
    lh.record_attendance(s, ACTOR, t1, c["m1"], certificate_no="DS-2024-001", subsidy_fen=20_000)
    lh.record_attendance(s, ACTOR, t1, c["m2"], completed=False)
    lh.record_attendance(s, ACTOR, t1, c["m4"])
    lh.record_attendance(s, ACTOR, t2, c["m5"])
    lh.record_attendance(s, ACTOR, t2, c["m1"])
    lh.record_attendance(s, ACTOR, t3, c["m6"])
    s1 = lh.open_shop(s, ACTOR, c["m1"], name="大山核桃", kind=ShopKind.ONLINE_SHOP,
                      platform="JD", opened_on=date(2024, 4, 1), training_id=t1).id
    s2 = lh.open_shop(s, ACTOR, c["m5"], name="铁柱直播间", kind=ShopKind.LIVE_STREAM,
                      platform="Douyin", opened_on=date(2024, 5, 1)).id
    s3 = lh.open_shop(s, ACTOR, c["m6"], name="西关村服务站", kind=ShopKind.SERVICE_STATION,
                      opened_on=date(2024, 2, 1)).id
    lh.open_shop(s, ACTOR, c["m4"], name="金花小卖部", kind=ShopKind.SHOP, opened_on=date(2023, 5, 1))
    lh.record_shop_earnings(s, ACTOR, s1, "2024-04", 150_000)
    lh.record_shop_earnings(s, ACTOR, s1, "2024-04", 150_000)
    lh.record_shop_earnings(s, ACTOR, s1, "2024-05", -20_000)  # a month's loss
    lh.record_shop_earnings(s, ACTOR, s2, "2024-06", 80_000)
    lh.close_shop(s, ACTOR, s2, date(2024, 9, 30))
    j1 = lh.add_job(s, ACTOR, c["m2"], employer_id=c["ent"], kind=JobKind.FULL_TIME,
                    wage_basis=WageBasis.MONTHLY, wage_fen=300_000, start_date=date(2024, 3, 1)).id
    lh.pay_wage(s, ACTOR, j1, "2024-03")
    lh.pay_wage(s, ACTOR, j1, "2024-03")
    lh.pay_wage(s, ACTOR, j1, "2024-04")
    lh.end_job(s, ACTOR, j1, date(2024, 4, 30))
    j2 = lh.add_job(s, ACTOR, c["m4"], employer_name="县城建筑队", kind=JobKind.SEASONAL,
                    transfer=True, wage_basis=WageBasis.DAILY, wage_fen=15_000,
                    start_date=date(2024, 7, 1)).id
    lh.pay_wage(s, ACTOR, j2, "2024-07", days=20)
    lh.add_job(s, ACTOR, c["m5"], employer_name="外地工厂", kind=JobKind.FULL_TIME,
               wage_basis=WageBasis.MONTHLY, wage_fen=250_000, start_date=date(2023, 1, 1),
               end_date=date(2023, 12, 31))
    return {"t1": t1, "t2": t2, "t3": t3, "s1": s1, "s2": s2, "s3": s3, "j1": j1, "j2": j2}


def test_records_once_and_money_in_the_ledger_channels(db_url, county):
    c = county
    with session_scope(db_url) as s:
        r = _hand_made_county(s, c)
        # Repeats recorded once: one attendance, one earning, one payment, one posting each.
        view = lh.training_view(s, ACTOR, r["t1"])
        assert [(a["member_id"], a["completed"], a["subsidy_fen"]) for a in view["attendees"]] == [
            (c["m1"], True, 20_000), (c["m2"], False, 0), (c["m4"], True, 0)]
        keys = sorted(s.scalars(select(Transaction.key).where(Transaction.key.like("lh:%"))))
        assert keys == sorted([
            f"lh:training:{r['t1']}:subsidy:{c['m1']}", f"lh:shop:{r['s1']}:2024-04",
            f"lh:shop:{r['s1']}:2024-05", f"lh:shop:{r['s2']}:2024-06",
            f"lh:job:{r['j1']}:wage:2024-03", f"lh:job:{r['j1']}:wage:2024-04",
            f"lh:job:{r['j2']}:wage:2024-07"])
        # Completion comes later and is never taken away by a repeat.
        a = lh.record_attendance(s, ACTOR, r["t1"], c["m2"], completed=True)
        assert a.completed and lh.record_attendance(s, ACTOR, r["t1"], c["m2"],
                                                    completed=False).completed
        # Credits on the households' accounts (negative balances: owed to them).
        assert balance(s, f"hh:{c['h1']}:shop:{r['s1']}") == -130_000
        assert balance(s, f"hh:{c['h1']}:job:{r['j1']}") == -600_000
        assert balance(s, f"hh:{c['h2']}:job:{r['j2']}") == -300_000  # 20 days x 150 yuan
        assert balance(s, f"hh:{c['h1']}:training") == -20_000
        assert balance(s, f"employer:{c['ent']}:wages") == 600_000
        income = attributed_income(s, 2024)
        assert income[c["h1"]] == {"education": 20_000, "entrepreneurship": 130_000,
                                   "employment": 600_000}
        assert income[c["h2"]] == {"employment": 300_000}
        assert income[c["h3"]] == {"entrepreneurship": 80_000}
        # The same key with another amount is refused, not posted twice.
        with pytest.raises(Conflict, match="recorded as 150000 fen") as e:
            lh.record_shop_earnings(s, ACTOR, r["s1"], "2024-04", 160_000)
        assert e.value.detail["field"] == "net_fen"
        with pytest.raises(Conflict) as e:
            lh.pay_wage(s, ACTOR, r["j2"], "2024-07", days=21)
        assert e.value.detail["field"] == "key"
        with pytest.raises(Conflict) as e:
            lh.record_attendance(s, ACTOR, r["t1"], c["m1"], subsidy_fen=30_000)
        assert e.value.detail["field"] == "subsidy_fen"
        assert s.scalar(select(func.count()).select_from(Transaction)
                        .where(Transaction.key.like("lh:%"))) == 7


def test_summary_of_a_hand_made_county(db_url, county):
    c = county
    with session_scope(db_url) as s:
        _hand_made_county(s, c)
        r = lh.summary(s, ACTOR, COUNTY, 2024)
        # Sessions begun in 2024: the county's 40-hour class and village B's 8 hours; the
        # November 2023 class counts in 2023.
        assert r["training"] == {
            "sessions_held": 2, "hours_held": 48, "external_attendees": 12,
            "attendances": 5,                      # m1, m2, m4 at t1; m5, m1 at t2
            "people_attended": 4,                  # m1, m2, m4, m5
            "people_trained": 3,                   # m2 did not complete
            "trainees_from_poor_households": 1,    # only household 1 is identified poor
            "people_trained_by_topic": {"ecommerce_operation": 2, "live_streaming": 2}}
        assert r["entrepreneurship"] == {
            "shops_opened": 3,                     # the 2023 corner shop is not new
            "shops_opened_still_open": 2,          # the live stream closed in September
            "shops_open_at_year_end": 3,           # the walnut shop, the station, the corner shop
            "shops_opened_by_trainees": 2,         # walnuts (names t1), station (m6 trained 2023);
            "people_opened_shops": 3}              # m5 trained only after opening
        assert r["employment"] == {"jobs_held": 2, "people_employed": 2, "jobs_started": 2,
                                   "transfer_jobs": 1}  # the 2023 factory job is over
        assert r["income_fen"] == {"entrepreneurship": 150_000 - 20_000 + 80_000,
                                   "employment": 2 * 300_000 + 20 * 15_000,
                                   "education": 20_000}
        assert r["households_with_income"] == 3
        village_a = lh.summary(s, CADRE_A, VILLAGE_A, 2024)
        assert village_a["training"]["people_trained"] == 2          # m1, m4
        assert village_a["income_fen"]["entrepreneurship"] == 130_000
        assert lh.summary(s, ACTOR, COUNTY, 2023)["training"]["people_trained"] == 1  # m6
        with pytest.raises(PermissionDenied):
            lh.summary(s, CADRE_A, COUNTY, 2024)


def test_earnings_and_wages_written_into_the_registry_income(db_url, county):
    c = county
    with session_scope(db_url) as s:
        t = _training(s, TrainingTopic.ECOMMERCE_OPERATION, COUNTY, date(2025, 1, 6), 24)
        lh.record_attendance(s, ACTOR, t, c["m1"], subsidy_fen=50_000)
        shop = lh.open_shop(s, ACTOR, c["m1"], name="大山核桃", kind=ShopKind.ONLINE_SHOP,
                            platform="Taobao", opened_on=date(2025, 2, 1), training_id=t).id
        job = lh.add_job(s, ACTOR, c["m2"], employer_name="扶贫车间", kind=JobKind.FULL_TIME,
                         wage_basis=WageBasis.MONTHLY, wage_fen=200_000,
                         start_date=date(2025, 1, 1)).id
        for month in ("02", "03"):
            lh.record_shop_earnings(s, ACTOR, shop, f"2025-{month}", 120_000)
            lh.pay_wage(s, ACTOR, job, f"2025-{month}")
        assert write_attributed_income(s, ACTOR, 2025)["created"] == 2
        rows = {(i.source, i.amount_fen) for i in s.scalars(
            select(Income).where(Income.household_id == c["h1"], Income.year == 2025))}
        # Entrepreneurship -> farming_business, employment -> wages; the subsidy is no income.
        assert rows == {(IncomeSource.FARMING_BUSINESS, 240_000), (IncomeSource.WAGES, 400_000)}
        lh.pay_wage(s, ACTOR, job, "2025-03", key="2025-03-bonus", amount_fen=50_000)
        assert write_attributed_income(s, ACTOR, 2025) == {
            "created": 0, "raised": 1, "unchanged": 1, "outside_scope": 0}
        wages = s.scalar(select(Income.amount_fen).where(
            Income.household_id == c["h1"], Income.year == 2025, Income.source == IncomeSource.WAGES))
        assert wages == 450_000


def test_errors_name_the_field(db_url, county):
    c = county
    with session_scope(db_url) as s:
        t = _training(s, TrainingTopic.FARMING_TECHNIQUE, COUNTY, date(2024, 3, 1), 8)
        other = _training(s, TrainingTopic.PROCESSING, COUNTY, date(2024, 9, 1), 8)
        job = lh.add_job(s, ACTOR, c["m2"], employer_id=c["ent"], kind=JobKind.FULL_TIME,
                         wage_basis=WageBasis.MONTHLY, wage_fen=300_000, start_date=date(2024, 3, 1))
        lh.pay_wage(s, ACTOR, job.id, "2024-04")
        lh.end_job(s, ACTOR, job.id, date(2024, 5, 31))
        cases = [
            (InvalidInput, "period", "ended on 2024-05-31",
             lambda: lh.pay_wage(s, ACTOR, job.id, "2024-06")),
            (InvalidInput, "period", "before job",
             lambda: lh.pay_wage(s, ACTOR, job.id, "2024-02")),
            (InvalidInput, "period", "not a month",
             lambda: lh.pay_wage(s, ACTOR, job.id, "2024-13")),
            (InvalidInput, "end_date", "wages are paid for 2024-04",
             lambda: lh.end_job(s, ACTOR, job.id, date(2024, 3, 31))),
            (InvalidInput, "member_id", "no member with id 99999",
             lambda: lh.record_attendance(s, ACTOR, t, 99999)),
            (PermissionDenied, "member_id", "outside your scope",
             lambda: lh.record_attendance(s, CADRE_A, t, c["m5"])),   # village B
            (PermissionDenied, "subsidy_fen", "not pay a subsidy",
             lambda: lh.record_attendance(s, CADRE_A, t, c["m1"], subsidy_fen=10_000)),
            (InvalidInput, "subsidy_fen", "integer fen",
             lambda: lh.record_attendance(s, ACTOR, t, c["m1"], subsidy_fen=100.5)),
            (InvalidInput, "certificate_no", "not completed",
             lambda: lh.record_attendance(s, ACTOR, t, c["m1"], completed=False,
                                          certificate_no="X1")),
            (InvalidInput, "training_id", "did not attend",
             lambda: lh.open_shop(s, ACTOR, c["m1"], name="x", kind=ShopKind.SHOP,
                                  opened_on=date(2024, 10, 1), training_id=other)),
            (InvalidInput, "platform", "which platform",
             lambda: lh.open_shop(s, ACTOR, c["m1"], name="x", kind=ShopKind.ONLINE_SHOP,
                                  opened_on=date(2024, 10, 1))),
            (InvalidInput, "employer_id", "either employer_id",
             lambda: lh.add_job(s, ACTOR, c["m1"], kind=JobKind.FULL_TIME,
                                wage_basis=WageBasis.MONTHLY, wage_fen=1,
                                start_date=date(2024, 1, 1))),
            (InvalidInput, "days", "daily job",
             lambda: lh.pay_wage(s, ACTOR, lh.add_job(
                 s, ACTOR, c["m1"], employer_name="农场", kind=JobKind.SEASONAL,
                 wage_basis=WageBasis.DAILY, wage_fen=12_000,
                 start_date=date(2024, 8, 1)).id, "2024-08")),
            (InvalidInput, "region_code", "no region",
             lambda: _training(s, TrainingTopic.OTHER, "621221999999", date(2024, 1, 1), 1)),
        ]
        for error, field, text, call in cases:
            with pytest.raises(error, match=text) as e:
                call()
            assert e.value.detail["field"] == field, (field, e.value.message)
        shop = lh.open_shop(s, ACTOR, c["m1"], name="x", kind=ShopKind.SHOP,
                            opened_on=date(2024, 4, 10))
        lh.close_shop(s, ACTOR, shop.id, date(2024, 6, 30))
        with pytest.raises(InvalidInput, match="closed on 2024-06-30") as e:
            lh.record_shop_earnings(s, ACTOR, shop.id, "2024-07", 1_000)
        assert e.value.detail["field"] == "period"


@pytest.fixture
def api(county, db_url):
    from ecpa.api.app import create_app
    with session_scope(db_url) as s:
        create_user(s, ACTOR, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ACTOR, "cadre", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, ACTOR, "ent", PW, Role.ENTERPRISE, COUNTY)
        create_user(s, ACTOR, "ent2", PW, Role.ENTERPRISE, COUNTY)
        create_user(s, ACTOR, "analyst", PW, Role.ANALYST)
    client = TestClient(create_app())
    return client, county, {u: login(client, u) for u in ("officer", "cadre", "ent", "ent2", "analyst")}


def test_api_with_role_checks(api):
    client, c, h = api
    body = {"title": "电商运营班", "topic": "ecommerce_operation", "organiser": "县商务局",
            "region_code": COUNTY, "start_date": "2024-03-01", "end_date": "2024-03-05",
            "hours": 40, "external_attendees": 5}
    assert client.post("/api/livelihoods/trainings", json=body, headers=h["cadre"]).status_code == 403
    r = client.post("/api/livelihoods/trainings", json={**body, "topic": "knitting"}, headers=h["officer"])
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "topic"
    r = client.post("/api/livelihoods/trainings", json=body, headers=h["officer"])
    assert r.status_code == 201, r.text
    tid = r.json()["id"]

    # A village cadre records attendance in its village, once; not elsewhere, no money.
    url = f"/api/livelihoods/trainings/{tid}/attendance"
    first = client.post(url, json={"member_id": c["m1"]}, headers=h["cadre"])
    again = client.post(url, json={"member_id": c["m1"]}, headers=h["cadre"])
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    r = client.post(url, json={"member_id": c["m5"]}, headers=h["cadre"])
    assert r.status_code == 403 and r.json()["detail"]["field"] == "member_id"
    r = client.post(url, json={"member_id": c["m1"], "subsidy_fen": 20_000}, headers=h["cadre"])
    assert r.status_code == 403 and r.json()["detail"]["field"] == "subsidy_fen"
    r = client.post(url, json={"member_id": c["m4"], "subsidy_fen": 200.5}, headers=h["officer"])
    assert r.status_code == 422 and "subsidy_fen" in r.json()["message"]
    r = client.post(url, json={"member_id": 99999}, headers=h["officer"])
    assert r.status_code == 422 and r.json()["detail"]["field"] == "member_id"
    r = client.post(url, json={"member_id": c["m1"], "subsidy_fen": 20_000}, headers=h["officer"])
    assert r.status_code == 201 and r.json()["subsidy_fen"] == 20_000
    seen = client.get(f"/api/livelihoods/trainings/{tid}", headers=h["cadre"]).json()
    assert [a["member_id"] for a in seen["attendees"]] == [c["m1"]]

    # Shops: the cadre opens one; only officers record money.
    shop = {"member_id": c["m1"], "name": "大山核桃", "kind": "online_shop", "platform": "JD",
            "opened_on": "2024-04-01", "training_id": tid}
    r = client.post("/api/livelihoods/shops", json=shop, headers=h["cadre"])
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    earn = f"/api/livelihoods/shops/{sid}/earnings"
    assert client.post(earn, json={"period": "2024-04", "net_fen": 150_000},
                       headers=h["cadre"]).status_code == 403
    r = client.post(earn, json={"period": "2024-4", "net_fen": 150_000}, headers=h["officer"])
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "period"
    r = client.post(earn, json={"period": "2024-04", "net_fen": 150_000}, headers=h["officer"])
    assert r.status_code == 201 and r.json()["net_fen"] == 150_000
    r = client.post(earn, json={"period": "2024-04", "net_fen": 99}, headers=h["officer"])
    assert r.status_code == 409 and r.json()["detail"]["field"] == "net_fen"
    assert [x["id"] for x in client.get("/api/livelihoods/shops", headers=h["cadre"]).json()] == [sid]

    # Jobs: an enterprise records and pays its own; not a job someone else recorded.
    job = {"member_id": c["m2"], "employer_id": c["ent"], "kind": "full_time",
           "wage_basis": "monthly", "wage_fen": 300_000, "start_date": "2024-03-01"}
    assert client.post("/api/livelihoods/jobs", json=job, headers=h["cadre"]).status_code == 403
    r = client.post("/api/livelihoods/jobs", json={**job, "employer_id": None,
                                                   "employer_name": "某工厂"}, headers=h["ent"])
    assert r.status_code == 422 and r.json()["detail"]["field"] == "employer_id"
    r = client.post("/api/livelihoods/jobs", json={**job, "wage_fen": "3000"}, headers=h["ent"])
    assert r.status_code == 422 and r.json()["detail"][0]["field"] == "wage_fen"
    r = client.post("/api/livelihoods/jobs", json=job, headers=h["ent"])
    assert r.status_code == 201, r.text
    jid = r.json()["id"]
    wages = f"/api/livelihoods/jobs/{jid}/wages"
    assert client.post(wages, json={"period": "2024-03"}, headers=h["ent2"]).status_code == 403
    r = client.post(wages, json={"period": "2024-03"}, headers=h["ent"])
    assert r.status_code == 201 and r.json()["amount_fen"] == 300_000
    r = client.post(f"/api/livelihoods/jobs/{jid}/end", json={"end_date": "2024-03-31"},
                    headers=h["ent"])
    assert r.status_code == 200 and r.json()["end_date"] == "2024-03-31"
    r = client.post(wages, json={"period": "2024-04"}, headers=h["ent"])
    assert r.status_code == 422 and r.json()["detail"]["field"] == "period"
    assert "ended on 2024-03-31" in r.json()["message"]
    assert [j["id"] for j in client.get("/api/livelihoods/jobs", headers=h["ent"]).json()] == [jid]
    assert client.get("/api/livelihoods/jobs", headers=h["ent2"]).json() == []

    # The summary: aggregate figures for analysts; a cadre only for its village.
    r = client.get("/api/livelihoods/summary", params={"region": COUNTY, "year": 2024},
                   headers=h["analyst"])
    assert r.status_code == 200, r.text
    figures = r.json()
    assert figures["training"]["people_trained"] == 1
    assert figures["training"]["external_attendees"] == 5
    assert figures["entrepreneurship"]["shops_opened_by_trainees"] == 1
    assert figures["employment"]["jobs_held"] == 1
    assert figures["income_fen"] == {"entrepreneurship": 150_000, "employment": 300_000,
                                     "education": 20_000}
    assert client.get("/api/livelihoods/summary", params={"region": COUNTY, "year": 2024},
                      headers=h["cadre"]).status_code == 403
    r = client.get("/api/livelihoods/summary", params={"region": VILLAGE_A, "year": 2024},
                   headers=h["cadre"])
    assert r.status_code == 200 and r.json()["employment"]["people_employed"] == 1


def test_cli_pays_wages_and_refuses_a_month_after_the_end(db_url, county):
    from ecpa.cli import app
    runner = CliRunner()
    c = county
    r = runner.invoke(app, ["livelihoods", "job-add", str(c["m4"]), "--employer", "县城建筑队",
                            "--kind", "seasonal", "--basis", "daily", "--wage", "150",
                            "--start", "2024-07-01", "--transfer"])
    assert r.exit_code == 0, r.output
    with session_scope(db_url) as s:
        from ecpa.livelihoods.models import Job
        jid = s.scalar(select(Job.id))
    r = runner.invoke(app, ["livelihoods", "pay-wage", str(jid), "2024-07", "--days", "20"])
    assert r.exit_code == 0 and "paid 3,000.00 yuan" in r.output, r.output
    r = runner.invoke(app, ["livelihoods", "job-end", str(jid), "--date", "2024-08-15"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["livelihoods", "pay-wage", str(jid), "2024-09", "--days", "3"])
    assert r.exit_code == 2 and "ended on 2024-08-15" in r.output
    r = runner.invoke(app, ["livelihoods", "shop-open", str(c["m5"]), "--name", "直播间",
                            "--kind", "live_stream", "--opened", "2024-05-01"])
    assert r.exit_code == 2 and "which platform" in r.output
    r = runner.invoke(app, ["livelihoods", "summary", "--region", COUNTY, "--year", "2024"])
    assert r.exit_code == 0, r.output
    assert "employment transfer" in r.output and "3,000.00 yuan" in r.output
    with session_scope(db_url) as s:
        assert attributed_income(s, 2024)[c["h2"]] == {"employment": 300_000}
