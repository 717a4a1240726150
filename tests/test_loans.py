"""Loan schedules agree with numpy-financial to the fen."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecpa.errors import InvalidInput
from ecpa.programs.loans import LoanTerms, Repayment, add_months, schedule

START = date(2024, 1, 31)


def test_equal_instalments_match_numpy_financial():
    # 50,000 yuan, 4.35 % a year, 36 months: a typical no-collateral poverty-alleviation loan.
    terms = LoanTerms(5_000_000, Decimal("0.0435"), 36, Repayment.EQUAL_INSTALMENTS, START)
    rows = schedule(terms)
    r = 0.0435 / 12
    payment = -npf.pmt(r, 36, 5_000_000)
    cum_i = 0
    for k, row in enumerate(rows, start=1):
        assert abs(row.payment_fen - payment) < 1
        assert abs(row.principal_fen - -npf.ppmt(r, k, 36, 5_000_000)) < 1
        assert abs(row.interest_fen - -npf.ipmt(r, k, 36, 5_000_000)) < 2
        cum_i += row.interest_fen
        exact_cum_i = -sum(npf.ipmt(r, j, 36, 5_000_000) for j in range(1, k + 1))
        assert abs(cum_i - exact_cum_i) < 1
    assert sum(x.principal_fen for x in rows) == 5_000_000 and rows[-1].balance_fen == 0
    # By hand: r = 0.003625, (1 + r)^36 = 1.13913, 50,000 × r × 1.13913 / 0.13913 = 1,484.00
    assert {x.payment_fen for x in rows} <= {148_399, 148_400, 148_401}


@settings(max_examples=200, deadline=None)
@given(principal=st.integers(100_00, 500_000_00), rate_bp=st.integers(0, 2400),
       months=st.integers(1, 120), grace=st.integers(0, 12))
def test_any_loan_agrees_with_numpy_financial_within_a_fen(principal, rate_bp, months, grace):
    grace = min(grace, months - 1)
    rate = Decimal(rate_bp) / 10_000
    rows = schedule(LoanTerms(principal, rate, months, Repayment.EQUAL_INSTALMENTS, START, grace))
    r, n = float(rate) / 12, months - grace
    for row in rows[:grace]:
        assert row.principal_fen == 0 and abs(row.interest_fen - principal * r) < 2
    pay = -npf.pmt(r, n, principal) if r else principal / n
    for k, row in enumerate(rows[grace:], start=1):
        exact_p = -npf.ppmt(r, k, n, principal) if r else principal / n
        assert abs(row.payment_fen - pay) < 1.000001
        assert abs(row.principal_fen - exact_p) < 1.000001
    assert sum(x.principal_fen for x in rows) == principal


def test_equal_principal_and_interest_only():
    ep = schedule(LoanTerms(1_200_000, Decimal("0.06"), 12, Repayment.EQUAL_PRINCIPAL, START))
    assert [x.principal_fen for x in ep] == [100_000] * 12
    assert ep[0].interest_fen == 6_000 and ep[-1].interest_fen == 500  # 0.5 % of what is left
    io = schedule(LoanTerms(1_000_000, Decimal("0.06"), 6, Repayment.INTEREST_ONLY, START))
    assert [x.interest_fen for x in io] == [5_000] * 6
    assert [x.principal_fen for x in io] == [0] * 5 + [1_000_000]


def test_due_dates_keep_month_ends():
    rows = schedule(LoanTerms(100_000, Decimal("0.05"), 3, Repayment.EQUAL_INSTALMENTS, START))
    assert [x.due for x in rows] == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]
    assert add_months(date(2023, 11, 30), 3) == date(2024, 2, 29)


@pytest.mark.parametrize("kw, field", [
    (dict(principal_fen=0), "principal_fen"), (dict(principal_fen=10.5), "principal_fen"),
    (dict(annual_rate=0.05), "annual_rate"), (dict(months=0), "months"),
    (dict(grace_months=12), "grace_months"),
])
def test_bad_terms_are_named(kw, field):
    base = dict(principal_fen=100_000, annual_rate=Decimal("0.05"), months=12,
                method=Repayment.EQUAL_INSTALMENTS, first_due=START)
    with pytest.raises(InvalidInput) as err:
        schedule(LoanTerms(**(base | kw)))
    assert err.value.detail["field"] == field
