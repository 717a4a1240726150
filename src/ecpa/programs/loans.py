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
from fractions import Fraction

from ..errors import InvalidInput

getcontext().prec = 40


class Repayment(StrEnum):
    EQUAL_INSTALMENTS = "equal_instalments"  # annuity: the same payment every month
    EQUAL_PRINCIPAL = "equal_principal"  # the same principal every month, interest on the rest
    INTEREST_ONLY = "interest_only"  # interest monthly, all principal with the last instalment
    BULLET = "bullet"  # principal and simple interest in one payment at maturity (到期一次性还本付息)


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
        if self.method is Repayment.BULLET and self.grace_months:
            raise InvalidInput("a bullet loan has no grace months: it is all paid at maturity",
                               field="grace_months")


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
    if terms.method is Repayment.BULLET:
        return [(balance, balance * r * terms.months)]
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
        # A bullet loan's only instalment falls due at maturity.
        due = add_months(terms.first_due, terms.months - 1 if terms.method is Repayment.BULLET
                         else k - 1)
        out.append(Instalment(k, due, principal, interest, terms.principal_fen - paid_p))
    return out


# --- Servicing: replaying a loan's repayments against its schedule -----------------

PARTS = ("penalty", "fee", "interest", "principal")
DEFAULT_ORDER = ("penalty", "fee", "interest", "principal")
DAYS_IN_YEAR = 365


def check_order(order: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    if sorted(order) != sorted(PARTS):
        raise InvalidInput(f"allocation order must name each of {', '.join(PARTS)} once, "
                           f"got {list(order)}", field="allocation_order")
    return tuple(order)


def _round(x: Fraction) -> int:
    """Half up, for non-negative amounts."""
    return int((2 * x.numerator + x.denominator) // (2 * x.denominator))


@dataclass
class InstalmentState:
    number: int
    due: date
    principal_fen: int  # still to pay
    interest_fen: int
    fee_fen: int
    penalty_accrued: Fraction = Fraction(0)
    penalty_paid_fen: int = 0

    def owed(self, part: str) -> int:
        if part == "penalty":
            return _round(self.penalty_accrued) - self.penalty_paid_fen
        return getattr(self, f"{part}_fen")

    def pay(self, part: str, amount: int) -> None:
        if part == "penalty":
            self.penalty_paid_fen += amount
        else:
            setattr(self, f"{part}_fen", getattr(self, f"{part}_fen") - amount)

    @property
    def outstanding_fen(self) -> int:
        return sum(self.owed(p) for p in PARTS)


class LoanBook:
    """A loan's position, rebuilt by replaying its repayments in date order.

    Penalty interest runs at ``penalty_rate`` a year, day by day, on each instalment's
    overdue principal and interest from the day after it fell due until it is paid (in
    exact fractions; an instalment's penalty is rounded half up to the fen).  A repayment
    covers the instalments that are due, oldest first, each in the configured order;
    what is left pays the next instalments in advance, in the same order.  Interest is
    the scheduled interest: paying early does not reduce it (the product says so).
    """

    def __init__(self, rows: list[Instalment], fee_fen: int, penalty_rate: Decimal,
                 order: tuple[str, ...] = DEFAULT_ORDER):
        self.rate = Fraction(penalty_rate)
        self.order = check_order(order)
        self.instalments = [InstalmentState(r.number, r.due, r.principal_fen, r.interest_fen,
                                            fee_fen if r.number == 1 else 0) for r in rows]
        self.cursor: date | None = None

    def accrue(self, day: date) -> None:
        if self.cursor is not None and day < self.cursor:
            raise InvalidInput(f"{day} is before the loan's last repayment on {self.cursor}",
                               field="date")
        for s in self.instalments:
            start = s.due if self.cursor is None else max(s.due, self.cursor)
            days = (day - start).days
            overdue = s.principal_fen + s.interest_fen
            if days > 0 and overdue > 0:
                s.penalty_accrued += overdue * self.rate * days / DAYS_IN_YEAR
        self.cursor = day

    def due_fen(self, day: date) -> int:
        """What must be paid on ``day`` to be up to date (after ``accrue(day)``)."""
        return sum(s.outstanding_fen for s in self.instalments if s.due <= day)

    @property
    def outstanding_fen(self) -> int:
        return sum(s.outstanding_fen for s in self.instalments)

    @property
    def principal_outstanding_fen(self) -> int:
        return sum(s.principal_fen for s in self.instalments)

    def apply(self, day: date, amount_fen: int) -> dict[str, int]:
        """Allocate a repayment; returns the amount that went to each part."""
        if type(amount_fen) is not int or amount_fen <= 0:
            raise InvalidInput("amount_fen must be a positive integer", field="amount_fen")
        self.accrue(day)
        if amount_fen > self.outstanding_fen:
            raise InvalidInput(f"{amount_fen} fen is more than the {self.outstanding_fen} fen "
                               "still owed on the loan", field="amount_fen")
        left = amount_fen
        split = dict.fromkeys(PARTS, 0)
        for s in self.instalments:  # already in due order
            for part in self.order:
                take = min(s.owed(part), left)
                if take:
                    s.pay(part, take)
                    split[part] += take
                    left -= take
            if not left:
                break
        return split

    def days_past_due(self, day: date) -> int:
        """Days since the oldest instalment that fell due before ``day`` and is unpaid."""
        for s in self.instalments:
            if s.due < day and s.principal_fen + s.interest_fen + s.fee_fen > 0:
                return (day - s.due).days
        return 0


def ageing_bucket(days_past_due: int) -> str:
    """The arrears bucket of a loan: current, 1-30, 31-90 or over 90 days past due."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 90:
        return "31-90"
    return "over_90"
