"""Loan schedules agree with numpy-financial to the fen; a payment beyond what is due
reduces principal and interest, or pays instalments in advance, as the product says."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import numpy_financial as npf
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ecpa.errors import InvalidInput
from ecpa.programs.loans import (
    LoanBook,
    LoanTerms,
    Prepayment,
    Repayment,
    add_months,
    schedule,
)

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
        # The last payment may take one fen more: where a month's interest is under a
        # fen, a fen of principal waits rather than an instalment's interest going
        # negative, and the last instalment pays what is left.
        assert abs(row.payment_fen - pay) < (2.000001 if k == n else 1.000001)
        assert abs(row.principal_fen - exact_p) < 2.000001
    assert sum(x.principal_fen for x in rows) == principal
    assert all(x.principal_fen >= 0 and x.interest_fen >= 0 for x in rows)


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


def book(terms: LoanTerms, start: date, prepayment=Prepayment.REDUCE_PRINCIPAL, fee=0) -> LoanBook:
    return LoanBook(schedule(terms), fee, Decimal("0.0365"), prepayment=prepayment, terms=terms,
                    start=start)


def test_a_prepayment_reduces_principal_and_the_periods_interest_by_days():
    # 12,000 yuan, equal principal, 0.5 % a month, disbursed 15 Jan, due the 15th.
    terms = LoanTerms(1_200_000, Decimal("0.06"), 12, Repayment.EQUAL_PRINCIPAL, date(2024, 2, 15))
    b = book(terms, date(2024, 1, 15))
    assert b.apply(date(2024, 2, 15), 106_000) == {"penalty": 0, "fee": 0, "interest": 6_000,
                                                  "principal": 100_000}
    # 1 March, 15 of the 29 days of 15 Feb-15 Mar gone: 3,000 yuan prepaid all go to
    # principal.  Instalment 2's interest: 1,100,000 × 0.5 % × 15/29 on the old balance
    # + 800,000 × 0.5 % × 14/29 on the new = 2,844.83 + 1,931.03 = 4,775.86 -> 4,776.
    assert b.apply(date(2024, 3, 1), 300_000)["principal"] == 300_000
    second = b.instalments[1]
    assert (second.interest_fen, second.planned_interest_fen) == (4_776, 4_776)
    # The 800,000 left are spread over the 11 instalments left, as the method does.
    again = schedule(LoanTerms(800_000, Decimal("0.06"), 11, Repayment.EQUAL_PRINCIPAL,
                               date(2024, 3, 15)))
    assert [s.principal_fen for s in b.instalments[1:]] == [r.principal_fen for r in again]
    assert [s.interest_fen for s in b.instalments[2:]] == [r.interest_fen for r in again[1:]]
    assert b.principal_outstanding_fen == 800_000
    # Nothing more falls due on 15 March than instalment 2 as it now stands.
    b.accrue(date(2024, 3, 15))
    assert b.due_fen(date(2024, 3, 15)) == again[0].principal_fen + 4_776
    assert sum(s.interest_fen for s in b.instalments[1:]) < sum(r.interest_fen for r in schedule(terms)[1:])


def test_a_bullet_loan_repaid_early_pays_interest_for_the_days_used():
    # 10,000 yuan at 4.35 % for 12 months, disbursed 1 March 2024, due 1 March 2025 (365
    # days): 435 yuan for the term.  Repaid on 1 September, after 184 days:
    # 43,500 × 184 / 365 = 21,928.77 -> 21,929 fen.
    terms = LoanTerms(1_000_000, Decimal("0.0435"), 12, Repayment.BULLET, date(2024, 4, 1))
    b = book(terms, date(2024, 3, 1))
    b.accrue(date(2024, 9, 1))
    assert b.payoff_fen(date(2024, 9, 1)) == 1_021_929
    with pytest.raises(InvalidInput, match="1021929 fen that repays the loan in full"):
        b.apply(date(2024, 9, 1), 1_043_500)
    assert b.apply(date(2024, 9, 1), 1_021_929) == {"penalty": 0, "fee": 0, "interest": 21_929,
                                                   "principal": 1_000_000}
    assert b.outstanding_fen == 0
    # A product that pays instalments in advance takes the whole term's interest.
    adv = book(terms, date(2024, 3, 1), Prepayment.ADVANCE_INSTALMENTS)
    adv.accrue(date(2024, 9, 1))
    assert adv.payoff_fen(date(2024, 9, 1)) == 1_043_500


def test_a_prepayment_pays_a_fee_not_yet_due_first_and_interest_left_falls_due_later():
    terms = LoanTerms(600_000, Decimal("0.06"), 6, Repayment.EQUAL_INSTALMENTS, date(2024, 2, 1))
    b = book(terms, date(2024, 1, 1), fee=1_000)
    # 16 January, 15 of 31 days: interest so far 3,000 × 15/31 = 1,451.6 -> 1,452.  A
    # payment of the fee and the principal and 452 of that interest leaves 1,000 of it,
    # due on 1 February; the loan is not closed before then.
    split = b.apply(date(2024, 1, 16), 1_000 + 600_000 + 452)
    assert split == {"penalty": 0, "fee": 1_000, "interest": 452, "principal": 600_000}
    assert b.principal_outstanding_fen == 0 and b.outstanding_fen == 1_000
    b.accrue(date(2024, 2, 1))
    assert b.due_fen(date(2024, 2, 1)) == 1_000
    assert b.apply(date(2024, 2, 1), 1_000)["interest"] == 1_000
    assert b.outstanding_fen == 0


def test_a_fen_left_after_a_prepayment_is_repaid_and_the_loan_closes():
    # 1 fen left over 11 equal-principal months: its interest is under a fen a month, so
    # the roundings cross; no instalment may carry negative interest (a loan that could
    # never close, a subsidy taken back from the household).
    terms = LoanTerms(1_200_000, Decimal("0.0435"), 12, Repayment.EQUAL_PRINCIPAL, date(2024, 2, 15))
    b = book(terms, date(2024, 1, 15))
    b.apply(date(2024, 2, 1), 1_199_999)
    assert all(s.principal_fen >= 0 and s.interest_fen >= 0 for s in b.instalments)
    paid = 0
    for s in list(b.instalments):
        b.accrue(s.due)
        if b.due_fen(s.due):
            paid += b.apply(s.due, b.due_fen(s.due))["principal"]
    assert paid == 1 and b.outstanding_fen == 0 and b.principal_outstanding_fen == 0
    assert all(min(r.principal_fen, r.interest_fen) >= 0 for r in schedule(
        LoanTerms(7, Decimal("0.0435"), 36, Repayment.EQUAL_INSTALMENTS, START)))


def test_a_schedule_is_the_same_in_every_thread():
    """Decimal's precision is per thread: a repayment recorded by a web worker must replay
    the same at the command line."""
    import threading
    terms = LoanTerms(1_000_001, Decimal("0.0435"), 48, Repayment.EQUAL_PRINCIPAL, START)
    got = []
    worker = threading.Thread(target=lambda: got.append(schedule(terms)))
    worker.start()
    worker.join()
    assert got[0] == schedule(terms)


@settings(max_examples=150, deadline=None)
@example(principal=100_000, rate_bp=22, months=36, method=Repayment.EQUAL_PRINCIPAL, grace=5,
         prepay=[(1, 100)], mode=Prepayment.REDUCE_PRINCIPAL)
@given(principal=st.integers(1_000_00, 100_000_00), rate_bp=st.integers(0, 2400),
       months=st.integers(1, 36), method=st.sampled_from(list(Repayment)),
       grace=st.integers(0, 6), prepay=st.lists(st.tuples(st.integers(1, 27), st.integers(1, 100)),
                                                max_size=40),
       mode=st.sampled_from(list(Prepayment)))
def test_any_loan_with_prepayments_repays_its_principal_exactly(principal, rate_bp, months, method,
                                                                 grace, prepay, mode):
    """Paying what is due on each due date and prepaying some share of the rest on some
    day of each month: the principal repaid is the loan to the fen; a reducing product
    never takes more interest than the schedule (a fen of rounding a prepayment at most)
    and an advancing one exactly the schedule's."""
    grace = 0 if method is Repayment.BULLET else min(grace, months - 1)
    terms = LoanTerms(principal, Decimal(rate_bp) / 10_000, months, method, date(2024, 2, 28), grace)
    rows = schedule(terms)
    b = book(terms, date(2024, 1, 28), mode)
    paid = dict.fromkeys(("penalty", "fee", "interest", "principal"), 0)
    prepayments = 0
    for k in range(months):
        due_day = add_months(date(2024, 2, 28), k)
        if k < len(prepay) and b.principal_outstanding_fen:
            day, share = prepay[k]
            day = add_months(date(2024, 1, 28), k) + timedelta(days=day)
            b.accrue(day)
            most = b.payoff_fen(day) - b.due_fen(day)
            amount = max(1, most * share // 100)
            if most > 0:
                for part, v in b.apply(day, amount).items():
                    paid[part] += v
                prepayments += 1
        b.accrue(due_day)
        if b.due_fen(due_day):
            for part, v in b.apply(due_day, b.due_fen(due_day)).items():
                paid[part] += v
    b.accrue(rows[-1].due)
    assert b.outstanding_fen == 0 and paid["penalty"] == 0
    assert paid["principal"] == principal
    scheduled = sum(r.interest_fen for r in rows)
    if mode is Prepayment.ADVANCE_INSTALMENTS:
        assert paid["interest"] == scheduled
    else:
        assert paid["interest"] <= scheduled + prepayments
