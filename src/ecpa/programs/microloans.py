"""Microloans for poor households (seed 000 §III.A, the agricultural loan; seed 001 §V):
no collateral, a guarantor, an interest subsidy, repaid by hand or deducted from the
household's buy-back proceeds.

Money moves only through the ledger.  Per product: the lender's funds, its interest, fee
and penalty income, its write-offs, the guarantor's account and the government fund that
pays the interest subsidy.  Per loan: the receivable ``loan:<id>`` (principal only —
interest, fees and penalties are income when paid) and the household's account
``hh:<household>:loan:<id>``, through which the disbursement reaches the household and
where the interest subsidy is credited (financial channel).  Every posting has a
deterministic key, so a repeated request records once.

The loan's position is never stored: ``LoanBook`` replays its repayments against the
schedule, so arrears, penalties and ageing on any business date follow from the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import Conflict, InvalidInput, NotFound
from ..ledger.models import AccountKind, Channel
from ..ledger.service import Entry, Leg, open_account, post
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..registry.models import Household
from .loans import (
    DEFAULT_ORDER,
    LoanBook,
    LoanTerms,
    Prepayment,
    Repayment,
    add_months,
    ageing_bucket,
    check_order,
    schedule,
)
from .models import (
    GuarantorKind,
    Loan,
    LoanProduct,
    LoanRepayment,
    LoanStatus,
    RepaymentSource,
)

LENDERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.ENTERPRISE, Role.COOPERATIVE_MANAGER)
WRITE_OFF_AFTER_DAYS = 90  # a loan may be written off once more than 90 days past due

# Seed 000 §III.A(4), the agricultural loan in Yanling: no mortgage, low interest; here
# with the terms of China's poverty-alleviation microcredit (扶贫小额信贷: up to 50,000
# yuan, up to 3 years, no collateral, benchmark rate, interest subsidised in full).
AGRICULTURAL_LOAN = dict(
    name="agricultural loan", lender_name="county rural credit cooperative",
    annual_rate=Decimal("0.0435"), penalty_rate=Decimal("0.0653"), months=12,
    method=Repayment.INTEREST_ONLY, grace_months=0, fee_fen=0, max_principal_fen=5_000_000,
    allocation_order=list(DEFAULT_ORDER), prepayment=Prepayment.REDUCE_PRINCIPAL,
    interest_subsidy_bp=10_000, guarantor_kind=GuarantorKind.GOVERNMENT,
    guarantor_name="county risk compensation fund",
    guarantee_bp=8_000)


def product_accounts(product_id: int) -> dict[str, str]:
    p = f"lender:loan:{product_id}"
    return {"funds": f"{p}:funds", "interest": f"{p}:interest", "fee": f"{p}:fees",
            "penalty": f"{p}:penalties", "writeoffs": f"{p}:writeoffs",
            "guarantee": f"guarantor:loan:{product_id}", "subsidy": f"gov:loan:{product_id}:subsidy"}


def receivable_account(loan_id: int) -> str:
    return f"loan:{loan_id}"


def household_loan_account(household_id: int, loan_id: int) -> str:
    return f"hh:{household_id}:loan:{loan_id}"


def _decimal(value, field: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise InvalidInput(f"{field} must be a decimal number such as 0.0435, got {value!r}",
                           field=field) from None
    if not 0 <= d < 1:
        raise InvalidInput(f"{field} must be at least 0 and below 1 (a yearly rate), got {d}",
                           field=field)
    return d


def create_product(session: Session, actor: Actor, *, name: str, lender_name: str,
                   annual_rate: Decimal, penalty_rate: Decimal, months: int,
                   method: Repayment | str, grace_months: int = 0, fee_fen: int = 0,
                   max_principal_fen: int, allocation_order: list[str] | None = None,
                   prepayment: Prepayment | str = Prepayment.REDUCE_PRINCIPAL,
                   interest_subsidy_bp: int = 0, guarantor_kind: GuarantorKind | str,
                   guarantor_name: str, guarantee_bp: int = 0) -> LoanProduct:
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.ENTERPRISE)
    annual_rate, penalty_rate = _decimal(annual_rate, "annual_rate"), _decimal(penalty_rate, "penalty_rate")
    try:
        method, guarantor_kind = Repayment(method), GuarantorKind(guarantor_kind)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="method/guarantor_kind") from None
    try:
        prepayment = Prepayment(prepayment)
    except ValueError:
        raise InvalidInput(f"prepayment must be one of {', '.join(p.value for p in Prepayment)}, "
                           f"got {prepayment!r}", field="prepayment") from None
    order = check_order(allocation_order or DEFAULT_ORDER)
    for field, value, top in (("fee_fen", fee_fen, None), ("max_principal_fen", max_principal_fen, None),
                              ("interest_subsidy_bp", interest_subsidy_bp, 10_000),
                              ("guarantee_bp", guarantee_bp, 10_000)):
        if type(value) is not int or value < 0 or (top is not None and value > top):
            raise InvalidInput(f"{field} must be an integer from 0{f' to {top}' if top else ''}, "
                               f"got {value!r}", field=field)
    # Check the terms once with the largest principal: months, grace.
    LoanTerms(max(max_principal_fen, 1), annual_rate, months, method, date(2000, 1, 31),
              grace_months).check()
    if session.scalar(select(LoanProduct.id).where(LoanProduct.name == name)) is not None:
        raise Conflict(f"a loan product named {name!r} exists")
    product = LoanProduct(
        name=name, lender_name=lender_name, annual_rate=str(annual_rate),
        penalty_rate=str(penalty_rate), months=months, method=method.value,
        grace_months=grace_months, fee_fen=fee_fen, max_principal_fen=max_principal_fen,
        allocation_order=list(order), prepayment=prepayment.value,
        interest_subsidy_bp=interest_subsidy_bp,
        guarantor_kind=guarantor_kind, guarantor_name=guarantor_name,
        guarantee_bp=guarantee_bp, created_by=actor.username)
    session.add(product)
    session.flush()
    acc = product_accounts(product.id)
    for key, label, kind in (
            ("funds", "funds", AccountKind.LENDER), ("interest", "interest income", AccountKind.LENDER),
            ("fee", "fee income", AccountKind.LENDER), ("penalty", "penalty income", AccountKind.LENDER),
            ("writeoffs", "written off", AccountKind.LENDER),
            ("guarantee", f"guarantee by {guarantor_name}",
             AccountKind.GOVERNMENT_FUND if guarantor_kind is GuarantorKind.GOVERNMENT
             else AccountKind.COOPERATIVE if guarantor_kind is GuarantorKind.COOPERATIVE
             else AccountKind.ENTERPRISE),
            ("subsidy", "interest subsidy", AccountKind.GOVERNMENT_FUND)):
        open_account(session, acc[key], f"{name}: {label}", kind)
    audit(session, actor, "create", "loan_product", product.id)
    return product


def _loan(session: Session, loan_id: int, lock: bool = True) -> Loan:
    """The loan, its row locked: repayments, disbursement and write-off of one loan run
    one after another (each replays the book and appends to it)."""
    q = select(Loan).where(Loan.id == loan_id)
    loan = session.scalar(q.with_for_update() if lock else q)
    if loan is None:
        raise NotFound(f"no loan {loan_id}")
    return loan


def _household(session: Session, actor: Actor, household_id: int) -> Household:
    household = session.get(Household, household_id)
    if household is None:
        raise InvalidInput(f"no household {household_id}", field="household_id")
    require_region(actor, household.village_code)
    return household


def grant(session: Session, actor: Actor, product_id: int, household_id: int,
          principal_fen: int, day: date, purpose: str = "",
          repay_from_program_id: int | None = None) -> Loan:
    """Approve a loan for a household (one running loan per product and household)."""
    require_role(actor, *LENDERS)
    product = session.get(LoanProduct, product_id)
    if product is None:
        raise InvalidInput(f"no loan product {product_id}", field="product_id")
    _household(session, actor, household_id)
    if type(principal_fen) is not int or not 0 < principal_fen <= product.max_principal_fen:
        raise InvalidInput(f"principal_fen must be between 1 and {product.max_principal_fen} "
                           f"for {product.name!r}, got {principal_fen!r}", field="principal_fen")
    if repay_from_program_id is not None:
        from .models import Enrolment
        if session.scalar(select(Enrolment.id).where(
                Enrolment.program_id == repay_from_program_id,
                Enrolment.household_id == household_id)) is None:
            raise InvalidInput(f"household {household_id} is not enrolled in farming program "
                               f"{repay_from_program_id}", field="repay_from_program_id")
    running = session.scalar(select(Loan.id).where(
        Loan.product_id == product_id, Loan.household_id == household_id,
        Loan.status.in_([LoanStatus.APPROVED, LoanStatus.ACTIVE])))
    if running is not None:
        raise Conflict(f"household {household_id} already has loan {running} of {product.name!r}")
    loan = Loan(product_id=product_id, household_id=household_id, principal_fen=principal_fen,
                annual_rate=product.annual_rate, penalty_rate=product.penalty_rate,
                months=product.months, method=product.method, grace_months=product.grace_months,
                fee_fen=product.fee_fen, allocation_order=list(product.allocation_order),
                prepayment=product.prepayment,
                purpose=purpose, repay_from_program_id=repay_from_program_id,
                status=LoanStatus.APPROVED, granted_on=day, created_by=actor.username)
    session.add(loan)
    session.flush()
    audit(session, actor, "grant", "loan", loan.id, {"principal_fen": principal_fen})
    return loan


def terms_of(loan: Loan) -> LoanTerms:
    return LoanTerms(loan.principal_fen, Decimal(loan.annual_rate), loan.months,
                     Repayment(loan.method), loan.first_due, loan.grace_months)


def disburse(session: Session, actor: Actor, loan_id: int, day: date,
             first_due: date | None = None) -> Loan:
    """Pay the loan out; the first instalment falls due a month later unless given."""
    require_role(actor, *LENDERS)
    loan = _loan(session, loan_id)
    household = _household(session, actor, loan.household_id)
    if loan.status is not LoanStatus.APPROVED:
        if loan.status is LoanStatus.ACTIVE and loan.disbursed_on == day:
            return loan  # the same request again
        raise Conflict(f"loan {loan_id} is {loan.status.value}, not approved")
    first_due = first_due or add_months(day, 1)
    if first_due <= day:
        raise InvalidInput("the first instalment must fall due after the disbursement",
                           field="first_due")
    loan.disbursed_on, loan.first_due, loan.status = day, first_due, LoanStatus.ACTIVE
    acc = product_accounts(loan.product_id)
    hh = household_loan_account(loan.household_id, loan.id)
    open_account(session, receivable_account(loan.id), f"loan {loan.id} to household "
                 f"{household.number}", AccountKind.LENDER, household_id=loan.household_id)
    open_account(session, hh, f"household {household.number}: loan {loan.id}",
                 AccountKind.HOUSEHOLD, household_id=loan.household_id)
    p, hid = loan.principal_fen, loan.household_id
    # The money reaches the household (its account shows it) and leaves as cash; a loan
    # is not income, so no channel.
    post(session, actor, f"loan:{loan.id}:disburse", day, f"loan {loan.id} disbursed",
         [Leg(receivable_account(loan.id), p, hid), Leg(hh, -p, hid),
          Leg(hh, p, hid), Leg(acc["funds"], -p)])
    session.flush()
    audit(session, actor, "disburse", "loan", loan.id)
    return loan


def _repayments(session: Session, loan_id: int) -> list[LoanRepayment]:
    return list(session.scalars(select(LoanRepayment).where(LoanRepayment.loan_id == loan_id)
                                .order_by(LoanRepayment.paid_on, LoanRepayment.id)))


def book_of(session: Session, loan: Loan, as_of: date | None = None) -> LoanBook:
    """The loan's book with its recorded repayments (those up to ``as_of``) replayed."""
    terms = terms_of(loan)
    book = LoanBook(schedule(terms), loan.fee_fen, Decimal(loan.penalty_rate),
                    tuple(loan.allocation_order), Prepayment(loan.prepayment), terms,
                    loan.disbursed_on)
    for r in _repayments(session, loan.id):
        if as_of is not None and r.paid_on > as_of:
            break
        split = book.apply(r.paid_on, r.amount_fen)
        # The stored split is what the ledger recorded; the replay must agree with it.
        if split != {"penalty": r.penalty_fen, "fee": r.fee_fen, "interest": r.interest_fen,
                     "principal": r.principal_fen}:
            raise RuntimeError(f"loan {loan.id}: repayment {r.key} replays as {split}")
    return book


def due_on(session: Session, loan: Loan, day: date) -> int:
    """What the household must pay on ``day`` to be up to date, penalties included."""
    book = book_of(session, loan)
    book.accrue(day)
    return book.due_fen(day)


@dataclass
class RepaymentPlan:
    row: LoanRepayment
    entry: Entry
    closes: bool


def plan_repayment(session: Session, loan: Loan, key: str, day: date, amount_fen: int,
                   source: RepaymentSource, source_account: str) -> RepaymentPlan:
    """The repayment row and its ledger entry, not yet recorded: ``source_account`` is
    debited (the lender's funds for cash, the household's farm account for a deduction
    from proceeds); the receivable and the lender's income accounts are credited."""
    if loan.status is not LoanStatus.ACTIVE:
        raise Conflict(f"loan {loan.id} is {loan.status.value}; only an active loan is repaid")
    if day < loan.disbursed_on:
        raise InvalidInput(f"{day} is before the disbursement on {loan.disbursed_on}", field="date")
    book = book_of(session, loan)
    split = book.apply(day, amount_fen)
    acc = product_accounts(loan.product_id)
    hid = loan.household_id
    legs = [Leg(source_account, amount_fen, hid if source is RepaymentSource.BUYBACK else None)]
    if split["principal"]:
        legs.append(Leg(receivable_account(loan.id), -split["principal"], hid))
    for part in ("interest", "fee", "penalty"):
        if split[part]:
            legs.append(Leg(acc[part], -split[part]))
    product = session.get(LoanProduct, loan.product_id)
    subsidy = split["interest"] * product.interest_subsidy_bp // 10_000
    if subsidy:
        # The government gives the interest back to the household (先缴后补): asset
        # income on the financial channel.
        legs += [Leg(acc["subsidy"], subsidy), Leg(household_loan_account(hid, loan.id),
                                                   -subsidy, hid, Channel.FINANCIAL)]
    row = LoanRepayment(loan_id=loan.id, key=key, paid_on=day, source=source,
                        amount_fen=amount_fen, penalty_fen=split["penalty"], fee_fen=split["fee"],
                        interest_fen=split["interest"], principal_fen=split["principal"])
    entry = Entry(f"loan:{loan.id}:repay:{key}", day,
                  f"loan {loan.id}: repayment ({source.value})", legs)
    return RepaymentPlan(row, entry, book.outstanding_fen == 0 and book.principal_outstanding_fen == 0)


def record(session: Session, loan: Loan, plan: RepaymentPlan) -> None:
    session.add(plan.row)
    if plan.closes:
        loan.status, loan.closed_on = LoanStatus.CLOSED, plan.row.paid_on
    session.flush()


def repay(session: Session, actor: Actor, loan_id: int, key: str, day: date,
          amount_fen: int) -> LoanRepayment:
    """A repayment by hand, idempotent by ``key``."""
    require_role(actor, *LENDERS)
    loan = _loan(session, loan_id)
    _household(session, actor, loan.household_id)
    done = session.scalar(select(LoanRepayment).where(LoanRepayment.key == key))
    if done is not None:
        if (done.loan_id, done.paid_on, done.amount_fen) != (loan_id, day, amount_fen):
            raise Conflict(f"repayment key {key!r} was used for another repayment")
        return done
    plan = plan_repayment(session, loan, key, day, amount_fen, RepaymentSource.MANUAL,
                          product_accounts(loan.product_id)["funds"])
    post(session, actor, plan.entry.key, plan.entry.business_date, plan.entry.description,
         plan.entry.legs)
    record(session, loan, plan)
    return plan.row


def write_off(session: Session, actor: Actor, loan_id: int, day: date, reason: str) -> Loan:
    """Write off a loan more than 90 days past due: the guarantor bears its share of the
    outstanding principal, the lender the rest."""
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    loan = _loan(session, loan_id)
    _household(session, actor, loan.household_id)
    if loan.status is LoanStatus.WRITTEN_OFF:
        return loan
    if loan.status is not LoanStatus.ACTIVE:
        raise Conflict(f"loan {loan_id} is {loan.status.value}; only an active loan is written off")
    if not reason.strip():
        raise InvalidInput("a write-off needs a reason", field="reason")
    book = book_of(session, loan)
    book.accrue(day)
    dpd = book.days_past_due(day)
    if dpd <= WRITE_OFF_AFTER_DAYS:
        raise Conflict(f"loan {loan_id} is {dpd} days past due on {day}; a loan is written off "
                       f"only after more than {WRITE_OFF_AFTER_DAYS}")
    product = session.get(LoanProduct, loan.product_id)
    owed = book.principal_outstanding_fen
    covered = owed * product.guarantee_bp // 10_000
    acc = product_accounts(loan.product_id)
    legs = [Leg(receivable_account(loan.id), -owed, loan.household_id)]
    if covered:
        legs.append(Leg(acc["guarantee"], covered))
    if owed - covered:
        legs.append(Leg(acc["writeoffs"], owed - covered))
    post(session, actor, f"loan:{loan.id}:writeoff", day,
         f"loan {loan.id} written off: {reason}", legs)
    loan.status, loan.closed_on = LoanStatus.WRITTEN_OFF, day
    session.flush()
    audit(session, actor, "write_off", "loan", loan.id, {"reason": reason, "principal_fen": owed})
    return loan


def position(session: Session, loan: Loan, as_of: date) -> dict:
    """The loan on a business date: each instalment's remaining parts, what is due, days
    past due and the ageing bucket."""
    base = {"id": loan.id, "household_id": loan.household_id, "product_id": loan.product_id,
            "principal_fen": loan.principal_fen, "status": loan.status.value,
            "annual_rate": loan.annual_rate, "months": loan.months, "method": loan.method,
            "prepayment": loan.prepayment,
            "granted_on": loan.granted_on.isoformat(),
            "disbursed_on": loan.disbursed_on and loan.disbursed_on.isoformat(),
            "closed_on": loan.closed_on and loan.closed_on.isoformat(), "as_of": as_of.isoformat(),
            "repay_from_program_id": loan.repay_from_program_id}
    if loan.disbursed_on is None:
        return base | {"instalments": [], "repayments": []}
    book = book_of(session, loan, as_of)
    book.accrue(as_of)
    running = loan.status is LoanStatus.ACTIVE or (loan.closed_on and loan.closed_on > as_of)
    dpd = book.days_past_due(as_of) if running else 0
    return base | {
        "principal_outstanding_fen": book.principal_outstanding_fen if running else 0,
        "due_fen": book.due_fen(as_of) if running else 0,
        # What closes the loan on the day (提前结清): with a reducing product, the
        # interest only for the days the money was out.
        "payoff_fen": book.payoff_fen(as_of) if running else 0,
        "days_past_due": dpd, "bucket": ageing_bucket(dpd),
        "instalments": [{"number": s.number, "due": s.due.isoformat(),
                         "principal_fen": s.planned_principal_fen,
                         "interest_fen": s.planned_interest_fen,
                         "remaining": {p: s.owed(p) for p in ("principal", "interest", "fee", "penalty")}}
                        for s in book.instalments],
        "repayments": [{"key": r.key, "date": r.paid_on.isoformat(), "source": r.source.value,
                        "amount_fen": r.amount_fen, "penalty_fen": r.penalty_fen,
                        "fee_fen": r.fee_fen, "interest_fen": r.interest_fen,
                        "principal_fen": r.principal_fen} for r in _repayments(session, loan.id)]}


def show(session: Session, actor: Actor, loan_id: int, as_of: date) -> dict:
    require_role(actor, *LENDERS, Role.ANALYST, Role.VILLAGE_CADRE)
    loan = _loan(session, loan_id, lock=False)
    _household(session, actor, loan.household_id)
    return position(session, loan, as_of)


def portfolio(session: Session, actor: Actor, as_of: date, region: str | None = None,
              product_id: int | None = None) -> dict:
    """Portfolio at risk on a business date: outstanding principal of the loans more than
    0, 30 and 90 days past due over all outstanding principal (PAR 1/30/90), the ageing
    buckets and what was written off.  Ratios are exact decimals to 4 places."""
    require_role(actor, *LENDERS, Role.ANALYST)
    region = region or actor.region_code or ""
    if region:
        require_region(actor, region)
    q = (select(Loan, Household.village_code).join(Household, Household.id == Loan.household_id)
         .where(Loan.disbursed_on.is_not(None), Loan.disbursed_on <= as_of))
    if region:
        q = q.where(Household.village_code.startswith(region))
    if product_id is not None:
        q = q.where(Loan.product_id == product_id)
    buckets = {b: {"loans": 0, "principal_fen": 0} for b in ("current", "1-30", "31-90", "over_90")}
    total = par1 = par30 = par90 = written_off = 0
    active = closed = 0
    for loan, _village in session.execute(q.order_by(Loan.id)).all():
        if loan.status is LoanStatus.WRITTEN_OFF and loan.closed_on <= as_of:
            written_off += loan.principal_fen - sum(r.principal_fen for r in _repayments(session, loan.id))
            continue
        if loan.status is LoanStatus.CLOSED and loan.closed_on <= as_of:
            closed += 1
            continue
        active += 1
        book = book_of(session, loan, as_of)
        owed = book.principal_outstanding_fen
        dpd = book.days_past_due(as_of)
        b = buckets[ageing_bucket(dpd)]
        b["loans"] += 1
        b["principal_fen"] += owed
        total += owed
        par1 += owed if dpd > 0 else 0
        par30 += owed if dpd > 30 else 0
        par90 += owed if dpd > 90 else 0

    def ratio(x: int) -> str:
        return str((Decimal(x) / total).quantize(Decimal("0.0001"))) if total else "0.0000"

    return {"as_of": as_of.isoformat(), "region": region or None, "active_loans": active,
            "closed_loans": closed, "principal_outstanding_fen": total,
            "par1": ratio(par1), "par30": ratio(par30), "par90": ratio(par90),
            "buckets": buckets, "written_off_fen": written_off}
