"""Loan schedules in integer fen.

The exact schedule is computed in ``Decimal``; each instalment's payment and principal
are then the differences of the *cumulative* exact amounts rounded to the fen, and the
interest is what the payment leaves.  So each payment and each principal part is within
one fen of the exact (numpy-financial) value, the cumulative payment, principal and
interest are within one fen of theirs at every instalment, the principal repaid adds up
to the loan exactly, and rounding never drifts over a long term.  Where a month's
interest is under a fen (a few yuan left after a prepayment, a tiny rate) the two
roundings can cross; then a fen of principal waits for the next instalment rather than
an interest going negative, and the last instalment, paid whole, may be a fen more.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum
from fractions import Fraction

from ..errors import InvalidInput

# Decimal's context is per thread: a schedule computed in a web worker must be the one
# computed at the command line to the fen, so every computation sets its own.
PRECISION = Context(prec=40)


class Repayment(StrEnum):
    EQUAL_INSTALMENTS = "equal_instalments"  # annuity: the same payment every month
    EQUAL_PRINCIPAL = "equal_principal"  # the same principal every month, interest on the rest
    INTEREST_ONLY = "interest_only"  # interest monthly, all principal with the last instalment
    BULLET = "bullet"  # principal and simple interest in one payment at maturity (到期一次性还本付息)


class Prepayment(StrEnum):
    """What a payment beyond what is due does; lenders differ, so the product says."""
    # Repays principal at once (提前还本): the period's interest is counted on the days
    # each yuan was out, the later instalments are recomputed on what is left over the
    # same term.  What China's poverty-alleviation microcredit asks of its lenders.
    REDUCE_PRINCIPAL = "reduce_principal"
    # Pays the next instalments as scheduled, their interest unreduced.
    ADVANCE_INSTALMENTS = "advance_instalments"


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
    with localcontext(PRECISION):
        return _exact_schedule(terms)


def _exact_schedule(terms: LoanTerms) -> list[tuple[Decimal, Decimal]]:
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
    with localcontext(PRECISION):
        return _schedule(terms)


def _schedule(terms: LoanTerms) -> list[Instalment]:
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
        # Where the interest is under a fen (a few yuan left after a prepayment, a tiny
        # rate) the two roundings can cross: the interest is never negative — the
        # principal waits a fen for the next instalment, and the last one is paid whole.
        if k == len(rows):
            payment = max(payment, principal)
        elif payment < principal:
            principal = payment
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
    # The instalment as now scheduled (a prepayment that reduces principal changes it).
    planned_principal_fen: int = 0
    planned_interest_fen: int = 0

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
    covers the instalments that are due, oldest first, each in the configured order.
    What is left is a prepayment, handled as the product says (``Prepayment``):

    - ``ADVANCE_INSTALMENTS``: it pays the next instalments in advance, in the same
      order; their interest is the scheduled interest.
    - ``REDUCE_PRINCIPAL`` (needs ``terms``): it pays a fee not yet due, then principal.
      The interest of the running period — from the previous due date (or ``start``, the
      disbursement) to the next — is its scheduled rate on each balance for the days it
      was out, exact, rounded half up once; the later instalments are the loan's method
      applied again to what is left, over the same due dates.  When the principal is all
      repaid the rest of the payment pays the interest run up to that day, and the loan
      closes (``payoff_fen`` says how much that takes).
    """

    def __init__(self, rows: list[Instalment], fee_fen: int, penalty_rate: Decimal,
                 order: tuple[str, ...] = DEFAULT_ORDER,
                 prepayment: Prepayment = Prepayment.ADVANCE_INSTALMENTS,
                 terms: LoanTerms | None = None, start: date | None = None):
        self.rate = Fraction(penalty_rate)
        self.order = check_order(order)
        self.prepayment = Prepayment(prepayment)
        if self.prepayment is Prepayment.REDUCE_PRINCIPAL and terms is None:
            raise ValueError("a book that reduces principal on prepayment needs the loan's terms")
        self.terms = terms
        self.instalments = [InstalmentState(r.number, r.due, r.principal_fen, r.interest_fen,
                                            fee_fen if r.number == 1 else 0,
                                            planned_principal_fen=r.principal_fen,
                                            planned_interest_fen=r.interest_fen) for r in rows]
        if terms is not None:
            start = start or add_months(terms.first_due, -1)
            # A period's interest at the scheduled rate: a month's, or a bullet loan's
            # whole term.
            months = terms.months if terms.method is Repayment.BULLET else 1
            self.period_rate = Fraction(terms.annual_rate) * months / 12
        self.starts = [start] + [s.due for s in self.instalments[:-1]]
        # The running period's interest so far: (instalment index, up to day, exact).
        self.accrual: tuple[int, date, Fraction] | None = None
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

    def _running(self, day: date) -> int | None:
        """The index of the first instalment not yet due on ``day``."""
        return next((i for i, s in enumerate(self.instalments) if s.due > day), None)

    def _accrued(self, i: int, day: date) -> Fraction:
        """Interest of instalment ``i``'s period run up to ``day``, exactly."""
        start, due = self.starts[i], self.instalments[i].due
        mark, so_far = start, Fraction(0)
        if self.accrual is not None and self.accrual[0] == i:
            _, mark, so_far = self.accrual
        balance = sum(s.principal_fen for s in self.instalments[i:])
        days = max(0, (day - mark).days)
        return so_far + balance * self.period_rate * Fraction(days, max(1, (due - start).days))

    def payoff_fen(self, day: date) -> int:
        """What repays the loan in full on ``day`` (after ``accrue(day)``)."""
        i = self._running(day)
        if self.prepayment is Prepayment.ADVANCE_INSTALMENTS or i is None:
            return self.outstanding_fen
        first = self.instalments[i]
        paid_interest = first.planned_interest_fen - first.interest_fen
        rest = self.instalments[i:]
        return (self.due_fen(day) + sum(s.fee_fen + s.principal_fen for s in rest)
                + _round(self._accrued(i, day)) - paid_interest)

    def _reschedule(self, i: int, balance: int) -> None:
        """Instalments ``i`` on: the loan's method applied to ``balance`` over them."""
        rest = self.instalments[i:]
        if not balance:
            parts = [(0, 0)] * len(rest)
        elif self.terms.method is Repayment.BULLET:
            parts = [(balance, 0)]
        else:
            rows = schedule(LoanTerms(balance, self.terms.annual_rate, len(rest),
                                      self.terms.method, rest[0].due,
                                      max(0, self.terms.grace_months - i)))
            parts = [(r.principal_fen, r.interest_fen) for r in rows]
        for s, (p, interest) in zip(rest, parts, strict=True):
            s.principal_fen = s.planned_principal_fen = p
            s.interest_fen = s.planned_interest_fen = interest

    def _prepay(self, day: date, amount: int, split: dict[str, int]) -> None:
        i = self._running(day)
        rest = self.instalments[i:]
        for s in rest:  # a fee not yet due (the first instalment's)
            take = min(s.fee_fen, amount)
            s.fee_fen -= take
            split["fee"] += take
            amount -= take
        first = self.instalments[i]
        accrued = self._accrued(i, day)
        paid_interest = first.planned_interest_fen - first.interest_fen
        balance = sum(s.principal_fen for s in rest)
        principal = min(amount, balance)
        self._reschedule(i, balance - principal)
        # This period: the old balance up to today, the new one for the days left.
        left = Fraction((first.due - day).days, max(1, (first.due - self.starts[i]).days))
        first.planned_interest_fen = _round(accrued + (balance - principal) * self.period_rate * left)
        first.interest_fen = first.planned_interest_fen - paid_interest
        self.accrual = (i, day, accrued)
        split["principal"] += principal
        amount -= principal
        take = min(first.interest_fen, amount)  # the principal is all repaid: close
        first.interest_fen -= take
        split["interest"] += take

    def apply(self, day: date, amount_fen: int) -> dict[str, int]:
        """Allocate a repayment; returns the amount that went to each part."""
        if type(amount_fen) is not int or amount_fen <= 0:
            raise InvalidInput("amount_fen must be a positive integer", field="amount_fen")
        self.accrue(day)
        most = self.payoff_fen(day)
        if amount_fen > most:
            raise InvalidInput(f"{amount_fen} fen is more than the {most} fen that repays "
                               f"the loan in full on {day}", field="amount_fen")
        reduce = self.prepayment is Prepayment.REDUCE_PRINCIPAL
        left = amount_fen
        split = dict.fromkeys(PARTS, 0)
        for s in self.instalments:  # already in due order
            if reduce and s.due > day:
                break
            for part in self.order:
                take = min(s.owed(part), left)
                if take:
                    s.pay(part, take)
                    split[part] += take
                    left -= take
            if not left:
                break
        if left and reduce:
            self._prepay(day, left, split)
        if min(split.values()) < 0 or sum(split.values()) != amount_fen:
            raise RuntimeError(f"repayment of {amount_fen} fen on {day} allocated as {split}")
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
