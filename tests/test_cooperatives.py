"""Cooperatives (seed 004 §3): members with land, labour and capital, wages per labour day,
the year-end distribution of the surplus, the village collective's share, the return by
members' trade, the four Gansu models as charter presets — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from conftest import COUNTY, PW, VILLAGE_A, VILLAGE_B, login
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from ecpa.cooperatives.service import (
    allocate,
    collective_account,
    coop_account,
    distribute,
    household_account,
    join,
    leave,
    member_accounts,
    pay_out,
    pay_wages,
    presets,
    record_labour,
    record_trade,
    set_charter,
    split_surplus,
    stakes,
    statement,
    trade_return,
    trades,
)
from ecpa.db import session_scope
from ecpa.errors import Conflict, InvalidInput
from ecpa.ledger.models import Transaction
from ecpa.ledger.service import attributed_income, balance, write_attributed_income
from ecpa.people.access import system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.registry.importer import import_register
from ecpa.registry.models import (
    Household,
    Income,
    IncomeSource,
    Organisation,
    OrganisationKind,
)

ACTOR = system_actor("test")
YEAR = 2024
YEAR_END = date(2024, 12, 31)


@pytest.fixture
def coop(db_url, register_file):
    """A cooperative in the county and the register's three households (h1, h2 in
    village A, h3 in village B)."""
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        org = Organisation(kind=OrganisationKind.COOPERATIVE, name="薏米专业合作社",
                           credit_code="93621221MA7K654321", region_code=COUNTY)
        s.add(org)
        s.flush()
        ids = s.scalars(select(Household.id).order_by(Household.number)).all()
        return (org.id, *ids)


def _hand_worked(s, cid, h1, h2, h3):
    """Land 1 share a mu, capital 1 share per 1,000 yuan, labour 1 share per 20 days;
    10 % to village A's collective, 5 % reserve; wage 80 yuan a day."""
    set_charter(s, ACTOR, cid, YEAR, "custom", VILLAGE_A, wage_per_day_fen=8_000,
                shares_per_mu=1, fen_per_capital_share=100_000, labour_days_per_share=20,
                collective_bp=1000, reserve_bp=500)
    joined = date(2023, 12, 1)  # members the whole year: no time weighting here
    join(s, ACTOR, cid, h1, joined, "3.50", 2, 200_000)
    join(s, ACTOR, cid, h2, joined, "2.25", 1, 0)
    join(s, ACTOR, cid, h3, joined, 0, 1, 25_000)
    record_labour(s, ACTOR, cid, h1, "h1-03", "2024-03", 30)
    record_labour(s, ACTOR, cid, h2, "h2-04", "2024-04", 10)
    pay_wages(s, ACTOR, cid, "2024-03", date(2024, 3, 31))
    pay_wages(s, ACTOR, cid, "2024-04", date(2024, 4, 30))


def test_hand_worked_distribution_pays_once(db_url, coop):
    cid, h1, h2, h3 = coop
    # Shares: h1 3.5 land + 2 capital + 30/20 labour = 7; h2 2.25 land + 10/20 labour =
    # 2.75; h3 25,000/100,000 capital = 0.25; total 10.
    # Surplus 1,000,001 fen: collective floor(100,000.1) = 100,000; reserve
    # floor(50,000.05) = 50,000; dividends 850,001, i.e. 85,000.1 a share.
    # Exact: h1 595,000.7, h2 233,750.275, h3 21,250.025; floors sum to 850,000, the one
    # fen left goes to the largest remainder (h1): 595,001 / 233,750 / 21,250.
    with session_scope(db_url) as s:
        _hand_worked(s, cid, h1, h2, h3)
        st1 = distribute(s, ACTOR, cid, YEAR, 1_000_001, YEAR_END)
    assert (st1["collective"]["fen"], st1["reserve"]["fen"], st1["dividends_fen"]) == (
        100_000, 50_000, 850_001)
    by = {m["household_id"]: m for m in st1["members"]}
    assert [by[h]["dividend_fen"] for h in (h1, h2, h3)] == [595_001, 233_750, 21_250]
    assert [by[h]["shares"] for h in (h1, h2, h3)] == ["7.0000", "2.7500", "0.2500"]
    assert (by[h1]["land_shares"], by[h1]["capital_shares"], by[h1]["labour_shares"]) == (
        "3.5000", "2.0000", "1.5000")
    assert by[h2]["exact_dividend_fen"] == "233750.28"
    assert st1["total_shares"] == "10.0000" and st1["collective"]["region_code"] == VILLAGE_A

    with session_scope(db_url) as s:
        again = distribute(s, ACTOR, cid, YEAR, 1_000_001, YEAR_END)  # a repeat: pays once
        assert again == st1 == statement(s, ACTOR, cid, YEAR)
        assert s.scalar(select(func.count()).select_from(Transaction).where(
            Transaction.key == f"coop:{cid}:distribution:{YEAR}")) == 1
        assert balance(s, household_account(cid, h1)) == -(240_000 + 595_001)
        assert balance(s, collective_account(VILLAGE_A)) == -100_000
        assert balance(s, coop_account(cid, "reserve")) == -50_000
        assert balance(s, coop_account(cid, "surplus")) == 1_000_001
        with pytest.raises(Conflict, match="already distributed"):
            distribute(s, ACTOR, cid, YEAR, 2_000_000, YEAR_END)
        with pytest.raises(Conflict, match="no longer change"):
            set_charter(s, ACTOR, cid, YEAR, "gansu-3.2")


def test_wages_per_labour_day(db_url, coop):
    cid, h1, h2, _ = coop
    with session_scope(db_url) as s:
        set_charter(s, ACTOR, cid, YEAR, "gansu-3.3", VILLAGE_A)  # 80 yuan a labour day
        join(s, ACTOR, cid, h1, date(2024, 1, 1), "4", 2, 0)
        record_labour(s, ACTOR, cid, h1, "a", "2024-06", 30)
        assert record_labour(s, ACTOR, cid, h1, "a", "2024-06", 30).key == "a"  # same key: once
        lines = pay_wages(s, ACTOR, cid, "2024-06", date(2024, 6, 30))
        assert [(x.days, x.wage_fen, x.already_paid) for x in lines] == [(30, 240_000, False)]
        record_labour(s, ACTOR, cid, h1, "b", "2024-06", 5)
        lines = pay_wages(s, ACTOR, cid, "2024-06", date(2024, 7, 1))
        # The run again pays only the record added since.
        assert [(x.key, x.wage_fen, x.already_paid) for x in lines] == [
            ("a", 240_000, True), ("b", 40_000, False)]
        assert balance(s, household_account(cid, h1)) == -280_000
        assert balance(s, coop_account(cid, "wages")) == 280_000
        with pytest.raises(Conflict, match="another record"):
            record_labour(s, ACTOR, cid, h1, "a", "2024-06", 31)
        with pytest.raises(InvalidInput, match="between 1 and 60") as e:
            record_labour(s, ACTOR, cid, h1, "c", "2024-06", 61)  # 2 labourers x 30 days
        assert e.value.detail["field"] == "days"
        with pytest.raises(InvalidInput, match="not a member"):
            record_labour(s, ACTOR, cid, h2, "d", "2024-06", 3)
        with pytest.raises(InvalidInput, match="not YYYY-MM"):
            record_labour(s, ACTOR, cid, h1, "e", "2024-13", 3)


def test_each_gansu_model_makes_a_charter(db_url, coop):
    cid, h1, *_ = coop
    models = presets()
    assert sorted(models) == ["gansu-3.1", "gansu-3.2", "gansu-3.3", "gansu-3.4"]
    with session_scope(db_url) as s:
        for year, (key, preset) in enumerate(sorted(models.items()), start=2021):
            assert f"§{key[-3:]}" in preset.source
            charter = set_charter(s, ACTOR, cid, year, key, VILLAGE_A)
            for p, v in preset.params.items():
                assert getattr(charter, p) == (v if v is not None or p in (
                    "fen_per_capital_share", "labour_days_per_share") else 0), (key, p)
            assert charter.collective_region_code == (VILLAGE_A if charter.collective_bp else None)
        c33 = set_charter(s, ACTOR, cid, 2023, "gansu-3.3", VILLAGE_A)
        assert (c33.collective_bp, c33.fen_per_capital_share, c33.labour_days_per_share) == (
            1000, None, None)  # land and labour; the park's share to the collective
        # An override on top of a preset.
        assert set_charter(s, ACTOR, cid, 2022, "gansu-3.2", reserve_bp=0).reserve_bp == 0
        # 3.1: no cooperative employs the farmers, so no wages.
        join(s, ACTOR, cid, h1, date(2021, 1, 1), 0, 1, 100_000)
        record_labour(s, ACTOR, cid, h1, "x", "2021-05", 3)
        with pytest.raises(InvalidInput, match="pays no wage"):
            pay_wages(s, ACTOR, cid, "2021-05", date(2021, 5, 31))
        with pytest.raises(InvalidInput, match="unknown model"):
            set_charter(s, ACTOR, cid, 2025, "gansu-9")
        with pytest.raises(InvalidInput, match="collective_region_code"):
            set_charter(s, ACTOR, cid, 2025, "gansu-3.3")


def test_wages_and_dividends_are_household_income(db_url, coop):
    cid, h1, h2, h3 = coop
    with session_scope(db_url) as s:
        _hand_worked(s, cid, h1, h2, h3)
        record_labour(s, ACTOR, cid, h3, "h3-05", "2024-05", 5)
        pay_wages(s, ACTOR, cid, "2024-05", date(2024, 5, 31))
        set_charter(s, ACTOR, cid, YEAR, "custom", VILLAGE_A, wage_per_day_fen=8_000,
                    shares_per_mu=1, fen_per_capital_share=100_000, labour_days_per_share=20,
                    collective_bp=1000, reserve_bp=500)
        distribute(s, ACTOR, cid, YEAR, 1_000_000, YEAR_END)
        income = attributed_income(s, YEAR)
        st_ = {m["household_id"]: m["dividend_fen"] for m in statement(s, ACTOR, cid, YEAR)["members"]}
        assert income[h1] == {"employment": 240_000, "financial": st_[h1]}
        assert income[h3] == {"employment": 40_000, "financial": st_[h3]}
        write_attributed_income(s, ACTOR, YEAR)
        rows = {(r.household_id, r.source): r.amount_fen for r in s.scalars(
            select(Income).where(Income.year == YEAR))}
        assert rows[(h3, IncomeSource("wages"))] == 40_000        # none recorded before
        assert rows[(h1, IncomeSource("property"))] == st_[h1]    # dividends: asset income
        assert rows[(h1, IncomeSource("wages"))] == 600_000       # the survey's figure is higher


def test_stakes_weigh_the_days_held(db_url, coop):
    cid, h1, h2, _ = coop
    with session_scope(db_url) as s:
        charter = set_charter(s, ACTOR, cid, 2025, "gansu-3.2")
        join(s, ACTOR, cid, h1, date(2024, 3, 1), "2", 1, 0)
        leave(s, ACTOR, cid, h1, date(2025, 7, 1))            # stake raised mid-year:
        join(s, ACTOR, cid, h1, date(2025, 7, 1), "4", 1, 0)  # leave and join again
        join(s, ACTOR, cid, h2, date(2025, 10, 1), "1", 0, 100_000)
        with pytest.raises(Conflict, match="leave and join again"):
            join(s, ACTOR, cid, h2, date(2025, 10, 1), "1.5", 0, 100_000)
        got = stakes(s, charter)
        # 2 mu for 181 days and 4 mu for 184 days of 365.
        assert got[h1].land == Fraction(2 * 181 + 4 * 184, 365)
        # h2 from 1 October: 92 days of land and capital.
        assert (got[h2].land, got[h2].capital) == (Fraction(92, 365), Fraction(92, 365))
        with pytest.raises(InvalidInput, match="float") as e:
            join(s, ACTOR, cid, h2, date(2025, 1, 1), 1.5, 0, 0)
        assert e.value.detail["field"] == "land_mu"


def test_hand_worked_return_by_trade(db_url, coop):
    """60 % of what the collective and the reserve leave goes back by trade, the rest by
    shares (the Law on Farmer Specialised Cooperatives, art. 44)."""
    cid, h1, h2, h3 = coop
    with session_scope(db_url) as s:
        _hand_worked(s, cid, h1, h2, h3)
        with pytest.raises(InvalidInput, match="0 or from 6000 to 10000") as e:
            set_charter(s, ACTOR, cid, YEAR, "custom", VILLAGE_A, shares_per_mu=1,
                        trade_return_bp=5000)
        assert e.value.detail["field"] == "trade_return_bp"
        set_charter(s, ACTOR, cid, YEAR, "custom", VILLAGE_A, wage_per_day_fen=8_000,
                    shares_per_mu=1, fen_per_capital_share=100_000, labour_days_per_share=20,
                    collective_bp=1000, reserve_bp=500, trade_return_bp=6000)
        with pytest.raises(InvalidInput, match="no member's trade") as e:
            distribute(s, ACTOR, cid, YEAR, 1_000_001, YEAR_END)
        assert e.value.detail["field"] == "trade_return_bp"
        # h1 delivered 20,000 yuan of coix seed, h2 bought 10,000 yuan of inputs; h3 none.
        record_trade(s, ACTOR, cid, h1, "t1", date(2024, 9, 20), 1_500_000, "薏米")
        record_trade(s, ACTOR, cid, h1, "t2", date(2024, 10, 8), 500_000, "薏米")
        record_trade(s, ACTOR, cid, h2, "t3", date(2024, 4, 2), 1_000_000, "fertiliser")
        assert record_trade(s, ACTOR, cid, h1, "t1", date(2024, 9, 20), 1_500_000, "薏米").key == "t1"
        with pytest.raises(Conflict, match="another record"):
            record_trade(s, ACTOR, cid, h1, "t1", date(2024, 9, 20), 1_600_000, "薏米")
        with pytest.raises(InvalidInput, match="not a member") as e:
            record_trade(s, ACTOR, cid, h1, "t0", date(2023, 11, 30), 100, "薏米")
        assert e.value.detail["field"] == "household_id"
        with pytest.raises(InvalidInput, match="value_fen"):
            record_trade(s, ACTOR, cid, h2, "t4", date(2024, 5, 1), 0, "seed")
        # Surplus 1,000,001: collective 100,000, reserve 50,000, 850,001 left; by trade
        # 60 % rounded up, 510,001 (510,000.6 would be under 60 %); by shares 340,000.
        # Trade 2,000,000 and 1,000,000 fen: h1 340,000.67, h2 170,000.33 -> the fen left
        # to h1: 340,001 / 170,000.  Shares 7, 2.75, 0.25 of 10: 238,000 / 93,500 / 8,500.
        got = distribute(s, ACTOR, cid, YEAR, 1_000_001, YEAR_END)
        assert got["trade_return"] == {"bp": 6000, "fen": 510_001, "total_trade_fen": 3_000_000}
        assert got["dividends_fen"] == 340_000
        by = {m["household_id"]: m for m in got["members"]}
        assert [by[h]["trade_return_fen"] for h in (h1, h2, h3)] == [340_001, 170_000, 0]
        assert [by[h]["dividend_fen"] for h in (h1, h2, h3)] == [238_000, 93_500, 8_500]
        assert [by[h]["trade_fen"] for h in (h1, h2, h3)] == [2_000_000, 1_000_000, 0]
        assert by[h1]["exact_trade_return_fen"] == "340000.67"
        assert by[h1]["paid_fen"] == 578_001
        assert sum(m["paid_fen"] for m in got["members"]) + 150_000 == 1_000_001
        assert balance(s, household_account(cid, h1)) == -(240_000 + 578_001)
        # The return by trade is part of the price of what was sold: industry income.
        income = attributed_income(s, YEAR)
        assert income[h1] == {"employment": 240_000, "industry": 340_001, "financial": 238_000}
        assert trades(s, ACTOR, cid, YEAR)["total_fen"] == 3_000_000
        with pytest.raises(Conflict, match="already distributed"):
            record_trade(s, ACTOR, cid, h2, "t5", date(2024, 12, 1), 100, "seed")


def test_a_member_is_paid_what_the_cooperative_owes_and_never_more(db_url, coop):
    cid, h1, h2, h3 = coop
    with session_scope(db_url) as s:
        _hand_worked(s, cid, h1, h2, h3)
        distribute(s, ACTOR, cid, YEAR, 1_000_001, YEAR_END)
        # h1 was credited wages 240,000 and a dividend of 595,001: 835,001 owed.
        with pytest.raises(InvalidInput, match="owes household .* 835001 fen") as e:
            pay_out(s, ACTOR, cid, h1, "BT-1", date(2025, 1, 10), 835_002)
        assert e.value.detail["field"] == "amount_fen"
        with pytest.raises(InvalidInput, match="method"):
            pay_out(s, ACTOR, cid, h1, "BT-1", date(2025, 1, 10), 100, "cheque")
        got = pay_out(s, ACTOR, cid, h1, "BT-1", date(2025, 1, 10), 500_000)
        assert got["owed_fen"] == 335_001
        assert pay_out(s, ACTOR, cid, h1, "BT-1", date(2025, 1, 10), 500_000)["owed_fen"] == 335_001
        with pytest.raises(Conflict, match="different transaction"):
            pay_out(s, ACTOR, cid, h1, "BT-1", date(2025, 1, 10), 400_000)
        pay_out(s, ACTOR, cid, h1, "CASH-7", date(2025, 1, 11), 335_001, "cash")
        with pytest.raises(InvalidInput, match="owes household .* 0 fen"):
            pay_out(s, ACTOR, cid, h1, "CASH-8", date(2025, 1, 12), 1)
        by = {a["household_id"]: a for a in member_accounts(s, ACTOR, cid)}
        assert by[h1] == {"household_id": h1, "household_number": "6212210001",
                          "credited_fen": {"employment": 240_000, "financial": 595_001},
                          "paid_out_fen": 835_001, "owed_fen": 0}
        assert by[h2]["owed_fen"] == 80_000 + 233_750 and by[h2]["paid_out_fen"] == 0
        assert balance(s, coop_account(cid, "payouts")) == -835_001
        # Paying out moves cash: the household's income is what it was credited.
        assert attributed_income(s, YEAR)[h1] == {"employment": 240_000, "financial": 595_001}
        assert attributed_income(s, 2025).get(h1) is None


weights = st.lists(st.fractions(min_value=0, max_value=10_000, max_denominator=1000),
                   min_size=1, max_size=30).filter(lambda w: sum(w) > 0)


@settings(max_examples=300, deadline=None)
@given(surplus=st.integers(1, 10**12), collective=st.integers(0, 10000),
       reserve=st.integers(0, 10000), shares=weights)
def test_any_distribution_adds_up_to_the_fen(surplus, collective, reserve, shares):
    reserve = min(reserve, 10000 - collective)
    c, r, dividends = split_surplus(surplus, collective, reserve)
    paid = allocate(dividends, dict(enumerate(shares)))
    assert c + r + sum(paid.values()) == surplus
    assert 0 <= c <= surplus * collective / 10000 and 0 <= r <= surplus * reserve / 10000
    total = sum(shares)
    for i, w in enumerate(shares):
        assert abs(paid[i] - Fraction(dividends) * w / total) < 1
        assert paid[i] >= 0


@settings(max_examples=300, deadline=None)
@given(distributable=st.integers(0, 10**12), bp=st.integers(6000, 10000), trade=weights)
def test_any_return_by_trade_is_at_least_its_rate_and_adds_up(distributable, bp, trade):
    by_trade = trade_return(distributable, bp)
    assert Fraction(distributable * bp, 10000) <= by_trade < Fraction(distributable * bp, 10000) + 1
    assert by_trade <= distributable
    returned = allocate(by_trade, dict(enumerate(trade)))
    assert sum(returned.values()) == by_trade


@pytest.fixture
def api(coop, db_url):
    from ecpa.api.app import create_app
    with session_scope(db_url) as s:
        create_user(s, ACTOR, "coopmgr", PW, Role.COOPERATIVE_MANAGER, COUNTY)
        create_user(s, ACTOR, "cadre", PW, Role.VILLAGE_CADRE, VILLAGE_A)
        create_user(s, ACTOR, "other", PW, Role.COOPERATIVE_MANAGER, "620102")  # Lanzhou
    return TestClient(create_app()), coop


def test_api_from_charter_to_statement(api):
    client, (cid, h1, h2, _) = api
    h = login(client, "coopmgr")
    base = f"/api/cooperatives/{cid}"
    assert len(client.get("/api/cooperatives/models", headers=h).json()) == 4
    charter = {"model": "gansu-3.3", "collective_region_code": VILLAGE_B}
    assert client.put(f"{base}/charters/2024", json=charter,
                      headers=login(client, "cadre")).status_code == 403
    assert client.put(f"{base}/charters/2024", json=charter,
                      headers=login(client, "other")).status_code == 403  # outside its county
    r = client.put(f"{base}/charters/2024", json=charter, headers=h)
    assert r.status_code == 200 and r.json()["collective_bp"] == 1000, r.text
    assert "§3.3" in r.json()["model_source"]
    bad = client.put(f"{base}/charters/2024", json={**charter, "wage_per_day_fen": 80.5}, headers=h)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "wage_per_day_fen"
    bad = client.put(f"{base}/charters/2024", json={"model": "gansu-7"}, headers=h)
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "model"
    bad = client.post(f"{base}/members", headers=h, json={
        "household_id": h1, "date": "2024-01-01", "land_mu": "3.333", "labourers": 1})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "land_mu"
    for hid, land in ((h1, "3.00"), (h2, "1")):
        r = client.post(f"{base}/members", headers=h, json={
            "household_id": hid, "date": "2024-01-01", "land_mu": land, "labourers": 1})
        assert r.status_code == 201, r.text
    assert r.json()["land_mu"] == "1.00"
    r = client.post(f"{base}/labour", headers=h, json={
        "household_id": h1, "key": "k1", "period": "2024-09", "days": 12})
    assert r.status_code == 201, r.text
    r = client.post(f"{base}/wages", headers=h, json={"period": "2024-09", "date": "2024-09-30"})
    assert r.status_code == 200 and r.json()["paid_now_fen"] == 96_000, r.text
    body = {"year": 2024, "surplus_fen": 100_000, "date": "2024-12-31"}
    assert client.post(f"{base}/distributions", headers=h,
                       json={**body, "surplus_fen": "lots"}).status_code == 422
    r = client.post(f"{base}/distributions", headers=h, json=body)
    assert r.status_code == 201, r.text
    # 10 % to village B's collective; 90,000 fen on land: 3 shares and 1 share.
    assert r.json()["collective"] == {"region_code": VILLAGE_B, "account": f"collective:{VILLAGE_B}",
                                      "bp": 1000, "fen": 10_000}
    assert [m["dividend_fen"] for m in r.json()["members"]] == [67_500, 22_500]
    assert client.post(f"{base}/distributions", headers=h, json=body).json() == r.json()
    assert client.get(f"{base}/distributions/2024", headers=h).json() == r.json()
    # 2025: half of the surplus back by trade (the law's floor is 60 %: refused), then 60 %.
    bad = client.put(f"{base}/charters/2025", headers=h, json={**charter, "trade_return_bp": 5000})
    assert bad.status_code == 422 and bad.json()["detail"]["field"] == "trade_return_bp"
    r = client.put(f"{base}/charters/2025", headers=h, json={**charter, "trade_return_bp": 6000})
    assert r.status_code == 200 and r.json()["trade_return_bp"] == 6000, r.text
    r = client.post(f"{base}/trades", headers=h, json={
        "household_id": h2, "key": "s1", "date": "2025-08-01", "product": "potatoes",
        "value_fen": 250_000})
    assert r.status_code == 201 and r.json()["value_fen"] == 250_000, r.text
    assert client.post(f"{base}/trades", headers=h, json={
        "household_id": h2, "key": "s2", "date": "2025-08-01", "product": "potatoes",
        "value_fen": 12.5}).status_code == 422
    assert client.get(f"{base}/trades", params={"year": 9999}, headers=h).status_code == 422
    owed = client.get(f"{base}/accounts", headers=h).json()
    assert [(a["household_id"], a["owed_fen"]) for a in owed] == [(h1, 96_000 + 67_500), (h2, 22_500)]
    r = client.post(f"{base}/payouts", headers=h, json={
        "household_id": h1, "key": "BT-9", "date": "2025-01-05", "amount_fen": 96_000})
    assert r.status_code == 201 and r.json()["owed_fen"] == 67_500, r.text
    r = client.post(f"{base}/payouts", headers=h, json={
        "household_id": h2, "key": "BT-10", "date": "2025-01-05", "amount_fen": 22_501})
    assert r.status_code == 422 and r.json()["detail"]["field"] == "amount_fen"
    got = client.get(f"{base}/trades", params={"year": 2025}, headers=h).json()
    assert got["total_fen"] == 250_000 and got["records"][0]["product"] == "potatoes"
    r = client.post(f"{base}/distributions", headers=h,
                    json={"year": 2025, "surplus_fen": 100_000, "date": "2025-12-31"})
    assert r.status_code == 201, r.text
    # 90,000 after the collective: 54,000 by trade, all to h2; 36,000 on land 3 : 1.
    by = {m["household_id"]: m for m in r.json()["members"]}
    assert (by[h2]["trade_return_fen"], by[h2]["dividend_fen"], by[h1]["dividend_fen"]) == (
        54_000, 9_000, 27_000)
    r = client.post(f"{base}/members/{h2}/leave", headers=h, json={"date": "2026-01-01"})
    assert r.status_code == 200 and r.json()["left_on"] == "2026-01-01"
    assert client.get(f"{base}/distributions/2023", headers=h).status_code == 404


def test_cli_charter_join_distribute_statement(coop):
    from ecpa.cli import app
    cid = coop[0]
    runner = CliRunner()
    r = runner.invoke(app, ["coop", "models"])
    assert r.exit_code == 0 and "gansu-3.4" in r.output
    r = runner.invoke(app, ["coop", "charter", str(cid), "2024", "--model", "gansu-3.2",
                            "--reserve-bp", "0"])
    assert r.exit_code == 0 and "reserve_bp: 0" in r.output, r.output
    r = runner.invoke(app, ["coop", "join", str(cid), "6212210001", "--land-mu", "2.5",
                            "--date", "2024-01-01"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["coop", "join", str(cid), "6212210002", "--land-mu", "2.5.1"])
    assert r.exit_code == 2 and "land_mu" in r.output
    r = runner.invoke(app, ["coop", "distribute", str(cid), "2024", "--surplus-fen", "123456",
                            "--date", "2024-12-31"])
    assert r.exit_code == 0 and "1,234.56" in r.output, r.output
    r = runner.invoke(app, ["coop", "statement", str(cid), "2024"])
    assert r.exit_code == 0 and "6212210001" in r.output and "2.5000" in r.output
    # 2025 with 60 % back by trade, recorded from the command line in yuan.
    r = runner.invoke(app, ["coop", "charter", str(cid), "2025", "--model", "gansu-3.2",
                            "--reserve-bp", "0", "--trade-return-bp", "6000"])
    assert r.exit_code == 0 and "trade_return_bp: 6000" in r.output, r.output
    trade = ["coop", "trade", str(cid), "6212210001", "--product", "coix seed",
             "--date", "2025-10-01"]
    r = runner.invoke(app, trade + ["--value", "800.50"])
    assert r.exit_code == 2 and "--key" in r.output  # a receipt number: no silent merging
    # Two deliveries of the same day and product are two records.
    for key, value in (("R-001", "500.25"), ("R-002", "300.25")):
        r = runner.invoke(app, trade + ["--value", value, "--key", key])
        assert r.exit_code == 0 and value in r.output, r.output
    r = runner.invoke(app, trade + ["--value", "8.005", "--key", "R-003"])
    assert r.exit_code == 2 and "--value" in r.output
    r = runner.invoke(app, ["coop", "distribute", str(cid), "2025", "--surplus-fen", "100000",
                            "--date", "2025-12-31"])
    assert r.exit_code == 0 and "returned by trade: 600.00" in r.output, r.output
    # Owed: 1,234.56 (2024) + 600 by trade and 400 dividends (2025); 1,000 paid out.
    r = runner.invoke(app, ["coop", "pay-out", str(cid), "6212210001", "--amount", "1000",
                            "--key", "BT-1", "--date", "2026-01-05"], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "still owed 1,234.56 yuan" in r.output, r.output
    r = runner.invoke(app, ["coop", "accounts", str(cid)], env={"COLUMNS": "200"})
    assert r.exit_code == 0 and "6212210001" in r.output and "1,234.56" in r.output, r.output
