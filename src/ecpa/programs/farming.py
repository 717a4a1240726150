"""Contract farming that "costs nothing" (seed 000 §III.A): inputs advanced to poor
households through their cooperative under a guarantee, a growing cycle, buy-back at a
protective price, and a settlement that nets the advance and pays the rest — once.

Money moves only through the ledger.  Each enrolment has its own household account
``hh:<household>:farm:<program>``: the advance is debited to it, buy-backs are credited
to it (income through the industry channel), and the settlement empties it.  Every step
is posted with a deterministic idempotency key, and the settlement commits in batches of
households: killed at any point and run again, it pays each household exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import in_list
from ..errors import Conflict, InvalidInput, NotFound
from ..ledger.models import AccountKind, Channel, Transaction
from ..ledger.service import (
    Entry,
    Leg,
    balance,
    balances,
    open_account,
    post,
    post_many,
)
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..registry.models import Household, Organisation, OrganisationKind
from . import microloans
from .models import (
    BuyBack,
    Enrolment,
    FarmingProgram,
    GuarantorKind,
    Loan,
    LoanRepayment,
    LoanStatus,
    MarketPrice,
    RepaymentSource,
)

MANAGERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER, Role.COOPERATIVE_MANAGER, Role.ENTERPRISE)


def _accounts(program: FarmingProgram) -> dict[str, str]:
    p = program.id
    return {"inputs": f"enterprise:{program.enterprise_id}:farm:{p}:inputs",
            "purchases": f"enterprise:{program.enterprise_id}:farm:{p}:purchases",
            "payouts": f"enterprise:{program.enterprise_id}:farm:{p}:payouts",
            "guarantee": f"guarantor:farm:{p}"}


# Seed 000 §III.A, "running chickens" (Wuyi county): chicks and feed advanced at about
# 70 yuan a bird, bought back after a 160-day cycle at 100 yuan or more (grade B at 90 %),
# under a government guarantee.
RUNNING_CHICKENS = dict(
    name="running chickens", product="free-range chicken", unit="chicken", cycle_days=160,
    input_cost_per_unit_fen=7_000, floor_price_fen=10_000, premium_fen=0,
    grades={"A": 10_000, "B": 9_000}, guarantor_kind=GuarantorKind.GOVERNMENT,
    guarantor_name="county poverty fund")


def household_account(program_id: int, household_id: int) -> str:
    return f"hh:{household_id}:farm:{program_id}"


def create_program(session: Session, actor: Actor, *, name: str, product: str, unit: str,
                   cycle_days: int, start_date: date, input_cost_per_unit_fen: int,
                   floor_price_fen: int, premium_fen: int, grades: dict[str, int],
                   guarantor_kind: GuarantorKind, guarantor_name: str, cooperative_id: int,
                   enterprise_id: int) -> FarmingProgram:
    require_role(actor, *MANAGERS)
    for field, value in (("input_cost_per_unit_fen", input_cost_per_unit_fen),
                         ("floor_price_fen", floor_price_fen), ("premium_fen", premium_fen)):
        if type(value) is not int or value < 0:
            raise InvalidInput(f"{field} must be a non-negative integer (fen)", field=field)
    if cycle_days <= 0:
        raise InvalidInput("cycle_days must be positive", field="cycle_days")
    if not grades or any(type(v) is not int or not 0 < v <= 20000 for v in grades.values()):
        raise InvalidInput("grades map each grade to a factor in basis points (10000 = full price)",
                           field="grades")
    coop = session.get(Organisation, cooperative_id)
    ent = session.get(Organisation, enterprise_id)
    if coop is None or coop.kind is not OrganisationKind.COOPERATIVE:
        raise InvalidInput(f"no cooperative with id {cooperative_id}", field="cooperative_id")
    if ent is None or ent.kind is not OrganisationKind.ENTERPRISE:
        raise InvalidInput(f"no enterprise with id {enterprise_id}", field="enterprise_id")
    program = FarmingProgram(
        name=name, product=product, unit=unit, cycle_days=cycle_days, start_date=start_date,
        input_cost_per_unit_fen=input_cost_per_unit_fen, floor_price_fen=floor_price_fen,
        premium_fen=premium_fen, grades=grades, guarantor_kind=guarantor_kind,
        guarantor_name=guarantor_name, cooperative_id=cooperative_id,
        enterprise_id=enterprise_id, created_by=actor.username)
    session.add(program)
    session.flush()
    acc = _accounts(program)
    open_account(session, acc["inputs"], f"{name}: inputs advanced", AccountKind.ENTERPRISE,
                 organisation_id=enterprise_id)
    open_account(session, acc["purchases"], f"{name}: buy-back purchases", AccountKind.ENTERPRISE,
                 organisation_id=enterprise_id)
    open_account(session, acc["payouts"], f"{name}: payouts to households", AccountKind.ENTERPRISE,
                 organisation_id=enterprise_id)
    open_account(session, acc["guarantee"], f"{name}: guarantee by {guarantor_name}",
                 AccountKind.GOVERNMENT_FUND if guarantor_kind is GuarantorKind.GOVERNMENT
                 else AccountKind.COOPERATIVE)
    audit(session, actor, "create", "farming_program", program.id)
    return program


def _program(session: Session, program_id: int) -> FarmingProgram:
    program = session.get(FarmingProgram, program_id)
    if program is None:
        raise NotFound(f"no farming program {program_id}")
    return program


def record_market_price(session: Session, actor: Actor, program_id: int, day: date,
                        price_fen: int) -> None:
    require_role(actor, *MANAGERS)
    _program(session, program_id)
    if type(price_fen) is not int or price_fen < 0:
        raise InvalidInput("price_fen must be a non-negative integer", field="price_fen")
    row = session.scalar(select(MarketPrice).where(MarketPrice.program_id == program_id,
                                                   MarketPrice.price_date == day))
    if row is None:
        session.add(MarketPrice(program_id=program_id, price_date=day, price_fen=price_fen))
    else:
        row.price_fen = price_fen
    session.flush()


def protective_price(session: Session, program: FarmingProgram, day: date) -> int:
    """Per unit, in fen: the higher of the floor and the latest market price on or
    before ``day`` plus the premium (the floor alone when there is no market price)."""
    market = session.scalar(
        select(MarketPrice.price_fen).where(MarketPrice.program_id == program.id,
                                            MarketPrice.price_date <= day)
        .order_by(MarketPrice.price_date.desc()).limit(1))
    if market is None:
        if program.floor_price_fen == 0:
            raise InvalidInput(f"no market price on or before {day} and no floor price")
        return program.floor_price_fen
    return max(program.floor_price_fen, market + program.premium_fen)


def enrol(session: Session, actor: Actor, program_id: int, household_id: int, units: int,
          day: date) -> Enrolment:
    """Enrol a household and advance its inputs (a debt it repays from the buy-back)."""
    require_role(actor, *MANAGERS)
    program = _program(session, program_id)
    household = session.get(Household, household_id)
    if household is None:
        raise InvalidInput(f"no household {household_id}", field="household_id")
    require_region(actor, household.village_code)
    if type(units) is not int or units <= 0:
        raise InvalidInput("units must be a positive integer", field="units")
    existing = session.scalar(select(Enrolment).where(Enrolment.program_id == program_id,
                                                      Enrolment.household_id == household_id))
    if existing is not None:
        if existing.units != units:
            raise Conflict(f"household {household_id} is enrolled with {existing.units} units")
        return existing
    enrolment = Enrolment(program_id=program_id, household_id=household_id, units=units,
                          enrolled_on=day)
    session.add(enrolment)
    session.flush()
    hh = household_account(program_id, household_id)
    open_account(session, hh, f"household {household.number} in {program.name}",
                 AccountKind.HOUSEHOLD, household_id=household_id)
    cost = units * program.input_cost_per_unit_fen
    if cost:  # inputs given free (Fugou's "farming costs nothing") are not a debt
        post(session, actor, f"farm:{program_id}:advance:{household_id}", day,
             f"{program.name}: inputs for {units} {program.unit}",
             # The advance is the household's cost of production: negative industry income.
             [Leg(hh, cost, household_id, Channel.INDUSTRY),
              Leg(_accounts(program)["inputs"], -cost)])
    return enrolment


def report_loss(session: Session, actor: Actor, program_id: int, household_id: int,
                lost_units: int) -> Enrolment:
    require_role(actor, *MANAGERS)
    e = _enrolment(session, program_id, household_id)
    if lost_units < 0 or lost_units > e.units:
        raise InvalidInput(f"lost units must be between 0 and {e.units}", field="lost_units")
    e.lost_units = lost_units
    session.flush()
    return e


def _enrolment(session: Session, program_id: int, household_id: int,
               lock: bool = False) -> Enrolment:
    q = select(Enrolment).where(Enrolment.program_id == program_id,
                                Enrolment.household_id == household_id)
    e = session.scalar(q.with_for_update() if lock else q)
    if e is None:
        raise NotFound(f"household {household_id} is not enrolled in program {program_id}")
    return e


def buy_back(session: Session, actor: Actor, program_id: int, household_id: int, key: str,
             day: date, quantity: int, grade: str) -> BuyBack:
    """Buy a delivery back at the protective price for its grade; idempotent by ``key``."""
    require_role(actor, *MANAGERS)
    program = _program(session, program_id)
    e = _enrolment(session, program_id, household_id, lock=True)  # against a settlement
    done = session.scalar(select(BuyBack).where(BuyBack.key == key))
    if done is not None:
        if (done.enrolment_id, done.quantity, done.grade) != (e.id, quantity, grade):
            raise Conflict(f"buy-back key {key!r} was used for another delivery")
        return done
    if is_settled(session, program_id, household_id):
        raise Conflict(f"household {household_id} is already settled in program {program_id}")
    if grade not in program.grades:
        raise InvalidInput(f"unknown grade {grade!r}; grades: {', '.join(program.grades)}",
                           field="grade")
    bought = sum(session.scalars(select(BuyBack.quantity).where(BuyBack.enrolment_id == e.id)))
    if type(quantity) is not int or quantity <= 0 or bought + quantity > e.units - e.lost_units:
        raise InvalidInput(f"quantity must be positive and at most {e.units - e.lost_units - bought}"
                           f" (enrolled {e.units}, lost {e.lost_units}, bought {bought})",
                           field="quantity")
    unit_price = protective_price(session, program, day) * program.grades[grade] // 10000
    amount = unit_price * quantity
    row = BuyBack(enrolment_id=e.id, key=key, delivered_on=day, quantity=quantity, grade=grade,
                  unit_price_fen=unit_price, amount_fen=amount)
    session.add(row)
    session.flush()
    post(session, actor, f"farm:{program_id}:buyback:{key}", day,
         f"{program.name}: {quantity} {program.unit} grade {grade} at {unit_price} fen",
         [Leg(_accounts(program)["purchases"], amount),
          Leg(household_account(program_id, household_id), -amount, household_id,
              Channel.INDUSTRY)])
    return row


def is_settled(session: Session, program_id: int, household_id: int) -> bool:
    """Settled: its payout was posted, or the loan repayment that took all of its
    proceeds was recorded under the settlement's key."""
    key = f"farm:{program_id}:settle:{household_id}"
    return (session.scalar(select(Transaction.id).where(Transaction.key == key)) is not None
            or session.scalar(select(LoanRepayment.id).where(LoanRepayment.key == key)) is not None)


@dataclass
class SettlementLine:
    household_id: int
    bought_fen: int
    advance_fen: int
    guarantee_fen: int
    paid_fen: int
    already_settled: bool
    loan_repaid_fen: int = 0  # deducted from the proceeds for a loan tied to the program


def settle(session_factory: Callable[[], Session], actor: Actor, program_id: int, day: date,
           after_each: Callable[[int], None] | None = None,
           batch_size: int = 1000) -> list[SettlementLine]:
    """Settle every enrolment: net the advance against the buy-backs, let the guarantor
    cover a shortfall, repay from the proceeds what is due on a loan tied to the program
    (``Loan.repay_from_program_id``), pay the rest.  Households are settled in batches, each batch one
    committed database transaction and each household's settlement one ledger
    transaction with a deterministic key: killed at any point and run again, it skips
    the households already paid and pays each of the others once.  ``after_each`` is
    called for every household once its batch is committed."""
    require_role(actor, *MANAGERS)
    if day > date.today():
        raise InvalidInput(f"a settlement is dated today or earlier, not {day}", field="date")
    with session_factory() as s:
        program = _program(s, program_id)
        coop = s.get(Organisation, program.cooperative_id)
        require_region(actor, coop.region_code)  # the cooperative's county, or an administrator
        acc = _accounts(program)
        enrolments = s.execute(select(Enrolment.household_id, Enrolment.units)
                               .where(Enrolment.program_id == program_id)
                               .order_by(Enrolment.id)).all()
        if day < program.start_date + timedelta(days=program.cycle_days):
            raise Conflict(f"the cycle ends on {program.start_date + timedelta(days=program.cycle_days)}")
    from sqlalchemy import func as sa_func
    lines: list[SettlementLine] = []
    for start in range(0, len(enrolments), batch_size):
        batch = enrolments[start:start + batch_size]
        households = [hid for hid, _ in batch]
        batch_lines = []
        with session_factory() as s, s.begin():
            keys = {hid: f"farm:{program_id}:settle:{hid}" for hid in households}
            done = set(s.scalars(select(Transaction.key)
                                 .where(in_list(s, Transaction.key, list(keys.values())))))
            # Locked: a buy-back for these households waits until the batch is settled
            # (and is then refused), so none is left on an emptied account.
            enrolment_of = dict(s.execute(
                select(Enrolment.id, Enrolment.household_id)
                .where(Enrolment.program_id == program_id,
                       in_list(s, Enrolment.household_id, households))
                .order_by(Enrolment.id).with_for_update()).all())
            bought = {enrolment_of[eid]: total for eid, total in s.execute(
                select(BuyBack.enrolment_id, sa_func.sum(BuyBack.amount_fen))
                .where(in_list(s, BuyBack.enrolment_id, list(enrolment_of)))
                .group_by(BuyBack.enrolment_id))}
            owed_by = balances(s, [household_account(program_id, hid) for hid in households])
            loans = {loan.household_id: loan for loan in s.scalars(
                select(Loan).where(Loan.repay_from_program_id == program_id,
                                   Loan.status == LoanStatus.ACTIVE,
                                   in_list(s, Loan.household_id, households))
                .order_by(Loan.id).with_for_update())}
            repaid_before = dict(s.execute(
                select(LoanRepayment.key, LoanRepayment.amount_fen)
                .where(in_list(s, LoanRepayment.key, list(keys.values())))).all())
            entries, repayments = [], []
            for hid, units in batch:
                got = int(bought.get(hid, 0))
                advance = units * program.input_cost_per_unit_fen
                # Settled: its payout was posted, or the loan repayment recorded under the
                # same key (when the loan took everything) — both commit with the batch.
                if keys[hid] in done or keys[hid] in repaid_before:
                    repaid = repaid_before.get(keys[hid], 0)
                    batch_lines.append(SettlementLine(hid, got, advance, max(advance - got, 0),
                                                      max(got - advance, 0) - repaid, True, repaid))
                    continue
                hh = household_account(program_id, hid)
                owed = owed_by[hh]  # > 0: the advance exceeds the buy-backs; < 0: household is owed
                if owed > 0:
                    # The guarantee: a household in a program that "costs nothing" never
                    # ends in debt; covering its loss counts as (industry) income.
                    entries.append(Entry(keys[hid], day,
                                         f"{program.name}: loss covered by {program.guarantor_name}",
                                         [Leg(acc["guarantee"], owed),
                                          Leg(hh, -owed, hid, Channel.INDUSTRY)]))
                repaid = 0
                if owed < 0 and hid in loans:
                    loan = loans[hid]
                    due = microloans.due_on(s, loan, day)
                    if due:
                        plan = microloans.plan_repayment(s, loan, keys[hid], day, min(due, -owed),
                                                         RepaymentSource.BUYBACK, hh)
                        entries.append(plan.entry)
                        repayments.append((loan, plan))
                        repaid = plan.row.amount_fen
                        owed += repaid
                if owed < 0:
                    # Paying out what was earned moves cash, it is not more income.
                    entries.append(Entry(keys[hid], day, f"{program.name}: settlement payout",
                                         [Leg(hh, -owed), Leg(acc["payouts"], owed)]))
                batch_lines.append(SettlementLine(hid, got, advance, max(owed, 0),
                                                  max(-owed, 0), False, repaid))
            post_many(s, actor, entries)
            for loan, plan in repayments:
                microloans.record(s, loan, plan)
        lines += batch_lines
        if after_each:
            for hid in households:
                after_each(hid)
    return lines


def program_summary(session: Session, actor: Actor, program_id: int) -> dict:
    """A program with every enrolment: units, losses, what was bought back, the advance,
    what the household's account still holds and whether it is settled."""
    from sqlalchemy import func as sa_func
    require_role(actor, *MANAGERS)
    program = _program(session, program_id)
    bought = dict(session.execute(
        select(BuyBack.enrolment_id, sa_func.sum(BuyBack.amount_fen))
        .join(Enrolment).where(Enrolment.program_id == program_id)
        .group_by(BuyBack.enrolment_id)).all())
    settled = set(session.scalars(select(Transaction.key).where(
        Transaction.key.like(f"farm:{program_id}:settle:%")))) | set(session.scalars(
        select(LoanRepayment.key).where(LoanRepayment.key.like(f"farm:{program_id}:settle:%"))))
    enrolments = []
    for e in session.scalars(select(Enrolment).where(Enrolment.program_id == program_id)
                             .order_by(Enrolment.id)):
        household = session.get(Household, e.household_id)
        if not actor.may_reach(household.village_code):
            continue
        enrolments.append({
            "household_id": e.household_id, "household_number": household.number,
            "units": e.units, "lost_units": e.lost_units,
            "advance_fen": e.units * program.input_cost_per_unit_fen,
            "bought_fen": int(bought.get(e.id, 0)),
            "account_balance_fen": balance(session, household_account(program_id, e.household_id)),
            "settled": f"farm:{program_id}:settle:{e.household_id}" in settled,
        })
    end = program.start_date + timedelta(days=program.cycle_days)
    return {"id": program.id, "name": program.name, "product": program.product,
            "unit": program.unit, "start_date": program.start_date.isoformat(),
            "cycle_ends": end.isoformat(), "input_cost_per_unit_fen": program.input_cost_per_unit_fen,
            "floor_price_fen": program.floor_price_fen, "premium_fen": program.premium_fen,
            "grades": program.grades, "guarantor_kind": program.guarantor_kind.value,
            "guarantor_name": program.guarantor_name, "enrolments": enrolments}
