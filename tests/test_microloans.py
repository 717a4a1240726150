"""Microloan servicing on SQLite and PostgreSQL: a business date moved through a loan's
life (disbursement, repayments in the configured order, penalties, arrears buckets,
PAR, write-off with the guarantor's share), deduction from buy-back proceeds at
settlement, and the HTTP API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from conftest import COUNTY, PW, login
from fastapi.testclient import TestClient
from sqlalchemy import select

from ecpa.db import session_factory, session_scope
from ecpa.errors import Conflict, InvalidInput
from ecpa.ledger.service import attributed_income, balance
from ecpa.people.access import system_actor
from ecpa.people.models import Role
from ecpa.people.service import create_user
from ecpa.programs import microloans as ml
from ecpa.programs.farming import (
    RUNNING_CHICKENS,
    buy_back,
    create_program,
    enrol,
    settle,
)
from ecpa.programs.loans import Repayment
from ecpa.programs.models import GuarantorKind, Loan, LoanStatus
from ecpa.registry.importer import import_register
from ecpa.registry.models import Household, Organisation, OrganisationKind

ACTOR = system_actor("test")

# 12,000 yuan over 12 months, equal principal, 6 % a year (0.5 % a month), a 10-yuan fee
# with the first instalment; penalty 3.65 % a year = exactly 0.01 % a day.
TERMS = dict(lender_name="county rural credit cooperative", annual_rate=Decimal("0.06"),
             penalty_rate=Decimal("0.0365"), months=12, method=Repayment.EQUAL_PRINCIPAL,
             fee_fen=1_000, max_principal_fen=5_000_000, interest_subsidy_bp=10_000,
             guarantor_kind=GuarantorKind.GOVERNMENT, guarantor_name="risk compensation fund",
             guarantee_bp=8_000)


@pytest.fixture
def households(db_url, register_file):
    with session_scope(db_url) as s:
        import_register(s, ACTOR, register_file)
        return s.scalars(select(Household.id).order_by(Household.number)).all()


def test_a_loans_life_on_a_moving_business_date(db_url, households):
    h1, h2, _ = households
    with session_scope(db_url) as s:
        product = ml.create_product(s, ACTOR, name="microcredit", **TERMS)
        other = ml.create_product(s, ACTOR, name="principal first", **TERMS,
                                  allocation_order=["principal", "interest", "fee", "penalty"])
        loan = ml.grant(s, ACTOR, product.id, h1, 1_200_000, date(2024, 1, 10), "pigs")
        with pytest.raises(Conflict, match="already has loan"):
            ml.grant(s, ACTOR, product.id, h1, 100_000, date(2024, 1, 10))
        with pytest.raises(InvalidInput, match="principal_fen must be between 1 and 5000000"):
            ml.grant(s, ACTOR, other.id, h1, 6_000_000, date(2024, 1, 10))
        ml.disburse(s, ACTOR, loan.id, date(2024, 1, 15), date(2024, 2, 15))
        twin = ml.grant(s, ACTOR, other.id, h1, 1_200_000, date(2024, 1, 10))
        ml.disburse(s, ACTOR, twin.id, date(2024, 1, 15), date(2024, 2, 15))
        current = ml.grant(s, ACTOR, product.id, h2, 500_000, date(2024, 1, 10))
        ml.disburse(s, ACTOR, current.id, date(2024, 1, 15), date(2024, 6, 1))
        assert balance(s, ml.receivable_account(loan.id)) == 1_200_000
        assert balance(s, ml.product_accounts(product.id)["funds"]) == -1_700_000

        # 15 Feb: the first instalment, on time: fee 10 + interest 60 + principal 1,000 yuan.
        r = ml.repay(s, ACTOR, loan.id, "p1", date(2024, 2, 15), 107_000)
        assert (r.fee_fen, r.interest_fen, r.principal_fen, r.penalty_fen) == (1_000, 6_000, 100_000, 0)
        assert ml.repay(s, ACTOR, loan.id, "p1", date(2024, 2, 15), 107_000).id == r.id
        with pytest.raises(Conflict, match="another repayment"):
            ml.repay(s, ACTOR, loan.id, "p1", date(2024, 2, 15), 100)
        ml.repay(s, ACTOR, twin.id, "t1", date(2024, 2, 15), 107_000)
        assert ml.show(s, ACTOR, loan.id, date(2024, 3, 1))["days_past_due"] == 0

        # 15 Mar falls due (1,000 principal + 55 interest) and is not paid.
        on = ml.show(s, ACTOR, loan.id, date(2024, 4, 14))
        assert (on["days_past_due"], on["bucket"]) == (30, "1-30")
        # Penalty: 105,500 fen × 0.01 % × 30 days = 316.5 -> 317 fen.
        assert on["instalments"][1]["remaining"]["penalty"] == 317
        on = ml.show(s, ACTOR, loan.id, date(2024, 4, 20))
        assert (on["days_past_due"], on["bucket"]) == (36, "31-90")
        # PAR on 20 April: this loan (1,100,000 fen outstanding, 36 days late), its
        # principal-first twin (the same) and a current loan of 500,000: 2.2M / 2.7M.
        par = ml.portfolio(s, ACTOR, date(2024, 4, 20))
        assert (par["par1"], par["par30"], par["par90"]) == ("0.8148", "0.8148", "0.0000")
        assert par["buckets"]["31-90"] == {"loans": 2, "principal_fen": 2_200_000}
        assert par["buckets"]["current"] == {"loans": 1, "principal_fen": 500_000}
        with pytest.raises(Conflict, match="36 days past due"):
            ml.write_off(s, ACTOR, loan.id, date(2024, 4, 20), "moved away")

        # 20 Apr: 2,000 yuan.  Penalty first: instalment 2 owes 380 (105,500 × 36 days)
        # + 5,500 + 100,000; instalment 3 (due 15 Apr) 53 (105,000 × 5 days = 52.5) +
        # 5,000, and the rest, 89,067, to its principal.
        r = ml.repay(s, ACTOR, loan.id, "p2", date(2024, 4, 20), 200_000)
        assert (r.penalty_fen, r.fee_fen, r.interest_fen, r.principal_fen) == (433, 0, 10_500, 189_067)
        # The same payment, principal first: instalment 2 whole (105,880), then all of
        # the remaining 94,120 to instalment 3's principal.
        t = ml.repay(s, ACTOR, twin.id, "t2", date(2024, 4, 20), 200_000)
        assert (t.penalty_fen, t.interest_fen, t.principal_fen) == (380, 5_500, 194_120)
        with pytest.raises(InvalidInput, match="before the loan's last repayment"):
            ml.repay(s, ACTOR, loan.id, "p0", date(2024, 4, 1), 100)
        with pytest.raises(InvalidInput, match="repays the loan in full"):
            ml.repay(s, ACTOR, current.id, "c0", date(2024, 4, 20), 600_000)

        # Every yuan of interest came back to the household as a subsidy (financial).
        assert attributed_income(s, 2024)[h1] == {"financial": 6_000 + 10_500 + 6_000 + 5_500}

        # 1 Aug: instalment 3 has 10,933 fen unpaid since 15 April: 108 days -> write-off.
        assert ml.show(s, ACTOR, loan.id, date(2024, 8, 1))["bucket"] == "over_90"
        ml.write_off(s, ACTOR, loan.id, date(2024, 8, 1), "household moved away")
        owed = 1_200_000 - 100_000 - 189_067
        acc = ml.product_accounts(product.id)
        assert balance(s, ml.receivable_account(loan.id)) == 0
        assert balance(s, acc["guarantee"]) == owed * 8 // 10 == 728_746
        assert balance(s, acc["writeoffs"]) == owed - 728_746
        assert s.get(Loan, loan.id).status is LoanStatus.WRITTEN_OFF
        with pytest.raises(Conflict, match="written_off"):
            ml.repay(s, ACTOR, loan.id, "p3", date(2024, 8, 2), 100)
        par = ml.portfolio(s, ACTOR, date(2024, 8, 1), product_id=product.id)
        assert par["written_off_fen"] == owed and par["active_loans"] == 1

        # The current loan repaid early in full closes.  Its product reduces principal
        # on prepayment: on 1 May the household owes the principal, the fee, and the
        # first period's interest (500,000 × 0.5 % = 2,500 fen for 15 Jan-1 Jun, 138 days)
        # for the 107 days the money was out: 1,938.4 -> 1,938 fen; not the 16,250 fen
        # of the whole schedule's interest.
        due = ml.show(s, ACTOR, current.id, date(2024, 5, 1))
        assert due["prepayment"] == "reduce_principal"
        assert due["payoff_fen"] == 500_000 + 1_000 + 1_938
        scheduled = sum(sum(i["remaining"].values()) for i in due["instalments"])
        assert scheduled == 500_000 + 1_000 + 16_250
        with pytest.raises(InvalidInput, match="502938 fen that repays the loan in full"):
            ml.repay(s, ACTOR, current.id, "c1", date(2024, 5, 1), scheduled)
        r = ml.repay(s, ACTOR, current.id, "c1", date(2024, 5, 1), due["payoff_fen"])
        assert (r.principal_fen, r.fee_fen, r.interest_fen) == (500_000, 1_000, 1_938)
        assert s.get(Loan, current.id).status is LoanStatus.CLOSED
        assert balance(s, ml.receivable_account(current.id)) == 0
        assert ml.portfolio(s, ACTOR, date(2024, 5, 2), product_id=product.id)["closed_loans"] == 1


def test_loan_repaid_from_buy_back_proceeds_at_settlement(db_url, households):
    h1, h2, _ = households
    start, end = date(2024, 3, 1), date(2024, 8, 8)
    with session_scope(db_url) as s:
        coop = Organisation(kind=OrganisationKind.COOPERATIVE, name="合作社",
                            credit_code="93621221MA7K123451", region_code=COUNTY)
        ent = Organisation(kind=OrganisationKind.ENTERPRISE, name="电商企业",
                           credit_code="91110000MA0012345X", region_code=COUNTY)
        s.add_all([coop, ent])
        s.flush()
        program = create_program(s, ACTOR, **RUNNING_CHICKENS, start_date=start,
                                 cooperative_id=coop.id, enterprise_id=ent.id)
        enrol(s, ACTOR, program.id, h1, 100, start)  # 7,000 yuan advanced
        enrol(s, ACTOR, program.id, h2, 50, start)   # 3,500 yuan advanced
        # Six months interest-only at 4.35 %, no penalty, the last instalment on the
        # settlement day: 725 fen interest a month, 2,000 yuan principal at the end.
        product = ml.create_product(s, ACTOR, name="chicken loan", **dict(
            TERMS, annual_rate=Decimal("0.0435"), penalty_rate=Decimal(0), months=6,
            method=Repayment.INTEREST_ONLY, fee_fen=0))
        loans = []
        for hid in (h1, h2):
            loan = ml.grant(s, ACTOR, product.id, hid, 200_000, start,
                            repay_from_program_id=program.id)
            ml.disburse(s, ACTOR, loan.id, start, date(2024, 3, 8))
            loans.append(loan.id)
        buy_back(s, ACTOR, program.id, h1, "h1", end, 100, "A")  # 10,000 yuan
        buy_back(s, ACTOR, program.id, h2, "h2", end, 40, "A")   # 4,000 yuan
        pid = program.id
        with pytest.raises(InvalidInput, match="not enrolled"):
            ml.grant(s, ACTOR, product.id, households[2], 1_000, start, repay_from_program_id=pid)

    lines = {x.household_id: x for x in settle(session_factory(db_url), ACTOR, pid, end)}
    # h1 is owed 3,000 yuan: 2,043.50 repay the loan (6 × 7.25 interest + 2,000), 956.50 paid.
    assert (lines[h1].loan_repaid_fen, lines[h1].paid_fen) == (204_350, 95_650)
    # h2 is owed only 500 yuan: all of it goes to the loan, oldest interest first.
    assert (lines[h2].loan_repaid_fen, lines[h2].paid_fen) == (50_000, 0)
    again = {x.household_id: x for x in settle(session_factory(db_url), ACTOR, pid, end)}
    assert all(x.already_settled for x in again.values())
    assert (again[h1].loan_repaid_fen, again[h1].paid_fen) == (204_350, 95_650)
    assert (again[h2].loan_repaid_fen, again[h2].paid_fen) == (50_000, 0)
    with session_scope(db_url) as s:
        one, two = (s.get(Loan, i) for i in loans)
        assert one.status is LoanStatus.CLOSED and two.status is LoanStatus.ACTIVE
        r = ml.show(s, ACTOR, two.id, end)["repayments"]
        assert [(x["source"], x["interest_fen"], x["principal_fen"]) for x in r] == [
            ("buyback", 4_350, 45_650)]
        assert ml.show(s, ACTOR, two.id, end)["principal_outstanding_fen"] == 154_350
        from ecpa.programs.farming import program_summary
        assert all(e["settled"] for e in program_summary(s, ACTOR, pid)["enrolments"])


def test_loans_through_the_api(db_url, households):
    from ecpa.api.app import create_app
    h1 = households[0]
    with session_scope(db_url) as s:
        create_user(s, ACTOR, "officer", PW, Role.COUNTY_OFFICER, COUNTY)
        create_user(s, ACTOR, "buyer", PW, Role.CONSUMER)
    client = TestClient(create_app())
    officer, buyer = login(client, "officer"), login(client, "buyer")
    body = {k: (str(v) if isinstance(v, Decimal) else v.value if hasattr(v, "value") else v)
            for k, v in TERMS.items()} | {"name": "microcredit"}
    assert client.post("/api/programs/loans/products", json=body, headers=buyer).status_code == 403
    bad = client.post("/api/programs/loans/products", headers=officer,
                      json=body | {"allocation_order": ["principal", "interest"]})
    assert bad.status_code == 422 and "allocation order" in bad.json()["message"]
    r = client.post("/api/programs/loans/products", json=body, headers=officer)
    assert r.status_code == 201, r.text
    loan = client.post("/api/programs/loans", headers=officer, json={
        "product_id": r.json()["id"], "household_id": h1, "principal_fen": 1_200_000,
        "date": "2024-01-10"}).json()
    assert loan["status"] == "approved"
    d = client.post(f"/api/programs/loans/{loan['id']}/disbursement", headers=officer,
                    json={"date": "2024-01-15", "first_due": "2024-02-15"})
    assert d.status_code == 200 and d.json()["instalments"][0]["remaining"]["fee"] == 1_000
    p = client.post(f"/api/programs/loans/{loan['id']}/repayments", headers=officer,
                    json={"key": "k1", "date": "2024-02-15", "amount_fen": 107_000})
    assert p.status_code == 201 and p.json()["principal_fen"] == 100_000
    bad = client.post(f"/api/programs/loans/{loan['id']}/repayments", headers=officer,
                      json={"key": "k2", "date": "2024-02-16", "amount_fen": 1.5})
    assert bad.status_code == 422
    show = client.get(f"/api/programs/loans/{loan['id']}", params={"as_of": "2024-04-14"},
                      headers=officer).json()
    assert show["days_past_due"] == 30
    par = client.get("/api/programs/loans/portfolio", params={"as_of": "2024-04-20"},
                     headers=officer).json()
    assert par["par30"] == "1.0000" and par["principal_outstanding_fen"] == 1_100_000
    assert client.get(f"/api/programs/loans/{loan['id']}", params={"as_of": "2024-04-14"},
                      headers=buyer).status_code == 403

    # A product that pays instalments in advance: repaying in full early takes every
    # scheduled fen of interest (6,000 + 5,500 + … + 500 = 39,000) and the fee.
    bad = client.post("/api/programs/loans/products", headers=officer,
                      json=body | {"name": "advance", "prepayment": "sometimes"})
    assert bad.status_code == 422 and "prepayment" in bad.text
    adv = client.post("/api/programs/loans/products", headers=officer,
                      json=body | {"name": "advance", "prepayment": "advance_instalments"})
    assert adv.status_code == 201 and adv.json()["prepayment"] == "advance_instalments"
    assert r.json()["prepayment"] == "reduce_principal"
    other = client.post("/api/programs/loans", headers=officer, json={
        "product_id": adv.json()["id"], "household_id": households[1],
        "principal_fen": 1_200_000, "date": "2024-01-10"}).json()
    client.post(f"/api/programs/loans/{other['id']}/disbursement", headers=officer,
                json={"date": "2024-01-15", "first_due": "2024-02-15"})
    show = client.get(f"/api/programs/loans/{other['id']}", params={"as_of": "2024-02-01"},
                      headers=officer).json()
    assert show["prepayment"] == "advance_instalments"
    assert show["payoff_fen"] == 1_200_000 + 1_000 + 39_000
    paid = client.post(f"/api/programs/loans/{other['id']}/repayments", headers=officer,
                       json={"key": "o1", "date": "2024-02-01", "amount_fen": show["payoff_fen"]})
    assert paid.status_code == 201 and paid.json()["loan"]["status"] == "closed"
