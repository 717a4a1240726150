"""Loan schedules in integer fen.

The exact schedule is computed in ``Decimal``; each instalment's payment and principal
are then the differences of the *cumulative* exact amounts rounded to the fen, and the
interest is what the payment leaves.  So each payment and each principal part is within
one fen of the exact (numpy-financial) value, the cumulative payment, principal and
interest are within one fen of theirs at every instalment, the principal repaid adds up
to the loan exactly, and rounding never drifts over a long term.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, getcontext
from enum import StrEnum

from ..errors import InvalidInput

getcontext().prec = 40


class Repayment(StrEnum):
    EQUAL_INSTALMENTS = "equal_instalments"  # annuity: the same payment every month
    EQUAL_PRINCIPAL = "equal_principal"  # the same principal every month, interest on the rest
    INTEREST_ONLY = "interest_only"  # interest monthly, all principal with the last instalment


@dataclass(frozen=True)
class LoanTerms:
    principal_fen: int
    annual_rate: Decimal  # nominal, e.g. Decimal("0.0435")
    months: int
    method: Repayment
    first_due: date
    grace_months: int = 0  # interest-only months before the method applies

    def check(self) -> None:
        if type(self.principal_fen) is not int or self.principal_fen <= 0:
            raise InvalidInput("principal_fen must be a positive integer", field="principal_fen")
        if not isinstance(self.annual_rate, Decimal) or not 0 <= self.annual_rate < 1:
            raise InvalidInput("annual_rate must be a Decimal between 0 and 1", field="annual_rate")
        if not 1 <= self.months <= 600:
            raise InvalidInput("months must be between 1 and 600", field="months")
        if not 0 <= self.grace_months < self.months:
            raise InvalidInput("grace_months must be less than months", field="grace_months")


@dataclass(frozen=True)
class Instalment:
    number: int
    due: date
    principal_fen: int
    interest_fen: int
    balance_fen: int  # principal outstanding after this instalment

    @property
    def payment_fen(self) -> int:
        return self.principal_fen + self.interest_fen


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the month's last day if it is shorter."""
    m = day.month - 1 + months
    year, month = day.year + m // 12, m % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def exact_schedule(terms: LoanTerms) -> list[tuple[Decimal, Decimal]]:
    """(principal, interest) of each month, unrounded."""
    r = terms.annual_rate / 12
    balance = Decimal(terms.principal_fen)
    out: list[tuple[Decimal, Decimal]] = []
    for _ in range(terms.grace_months):
        out.append((Decimal(0), balance * r))
    n = terms.months - terms.grace_months
    if terms.method is Repayment.EQUAL_INSTALMENTS:
        payment = balance / n if r == 0 else balance * r / (1 - (1 + r) ** -n)
        for _ in range(n):
            interest = balance * r
            out.append((payment - interest, interest))
            balance -= payment - interest
    elif terms.method is Repayment.EQUAL_PRINCIPAL:
        part = balance / n
        for _ in range(n):
            out.append((part, balance * r))
            balance -= part
    else:
        for k in range(n):
            out.append((balance if k == n - 1 else Decimal(0), balance * r))
    return out


def _fen(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def schedule(terms: LoanTerms) -> list[Instalment]:
    terms.check()
    rows = exact_schedule(terms)
    out: list[Instalment] = []
    cum_p = cum_t = Decimal(0)
    paid_p = paid_t = 0
    for k, (p, i) in enumerate(rows, start=1):
        cum_p += p
        cum_t += p + i
        # Cumulative rounding: the last instalment lands on the loan exactly.
        principal = (terms.principal_fen if k == len(rows) else _fen(cum_p)) - paid_p
        payment = _fen(cum_t) - paid_t
        interest = payment - principal
        paid_p += principal
        paid_t += payment
        out.append(Instalment(k, add_months(terms.first_due, k - 1), principal, interest,
                              terms.principal_fen - paid_p))
    return out
