"""HTTP routes of contract farming ("costing nothing"): programs, market prices,
enrolments with the input advance, losses, buy-backs and the settlement."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field, StrictInt

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from ..db import session_factory
from . import farming, microloans
from .loans import LoanTerms, Prepayment, Repayment, schedule
from .models import GuarantorKind, LoanProduct

router = ApiRouter(prefix="/api/programs/farming", tags=["programs"])


class ProgramIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    product: str = Field(min_length=1, max_length=100)
    unit: str = Field(min_length=1, max_length=20, description="chicken, jin, head …")
    cycle_days: int = Field(gt=0, le=3650)
    start_date: date
    input_cost_per_unit_fen: StrictInt = Field(ge=0, description="integer fen")
    floor_price_fen: StrictInt = Field(0, ge=0, description="protective floor, fen per unit")
    premium_fen: StrictInt = Field(0, ge=0, description="over the market price, fen per unit")
    grades: dict[str, StrictInt] = Field(description="grade -> factor in basis points (10000 = full)")
    guarantor_kind: GuarantorKind
    guarantor_name: str = Field(min_length=1, max_length=200)
    cooperative_id: int
    enterprise_id: int


class PriceIn(BaseModel):
    date: date
    price_fen: StrictInt = Field(ge=0)


class EnrolIn(BaseModel):
    household_id: int
    units: StrictInt = Field(gt=0)
    date: date


class LossIn(BaseModel):
    household_id: int
    lost_units: StrictInt = Field(ge=0)


class BuyBackIn(BaseModel):
    household_id: int
    key: str = Field(min_length=1, max_length=200, description="idempotency key of the delivery")
    date: date
    quantity: StrictInt = Field(gt=0)
    grade: str


class SettleIn(BaseModel):
    date: date


@router.post("", status_code=201)
def create(body: ProgramIn, session: SessionDep, actor: ActorDep) -> dict:
    program = farming.create_program(session, actor, **body.model_dump())
    return farming.program_summary(session, actor, program.id)


@router.get("/{program_id}")
def show(program_id: int, session: SessionDep, actor: ActorDep) -> dict:
    return farming.program_summary(session, actor, program_id)


@router.post("/{program_id}/market-prices", status_code=201)
def market_price(program_id: int, body: PriceIn, session: SessionDep, actor: ActorDep) -> dict:
    farming.record_market_price(session, actor, program_id, body.date, body.price_fen)
    program = farming._program(session, program_id)
    return {"date": body.date.isoformat(), "price_fen": body.price_fen,
            "protective_price_fen": farming.protective_price(session, program, body.date)}


@router.post("/{program_id}/enrolments", status_code=201)
def enrol(program_id: int, body: EnrolIn, session: SessionDep, actor: ActorDep) -> dict:
    e = farming.enrol(session, actor, program_id, body.household_id, body.units, body.date)
    return {"household_id": e.household_id, "units": e.units, "enrolled_on": e.enrolled_on.isoformat()}


@router.post("/{program_id}/losses")
def loss(program_id: int, body: LossIn, session: SessionDep, actor: ActorDep) -> dict:
    e = farming.report_loss(session, actor, program_id, body.household_id, body.lost_units)
    return {"household_id": e.household_id, "units": e.units, "lost_units": e.lost_units}


@router.post("/{program_id}/buy-backs", status_code=201)
def buy_back(program_id: int, body: BuyBackIn, session: SessionDep, actor: ActorDep) -> dict:
    b = farming.buy_back(session, actor, program_id, body.household_id, body.key, body.date,
                         body.quantity, body.grade)
    return {"key": b.key, "quantity": b.quantity, "grade": b.grade,
            "unit_price_fen": b.unit_price_fen, "amount_fen": b.amount_fen}


@router.post("/{program_id}/settlement")
def settle(program_id: int, body: SettleIn, actor: ActorDep) -> dict:
    """Settle every enrolment; household by household, each committed once (a repeat,
    or a re-run after a failure, pays nobody twice)."""
    lines = farming.settle(session_factory(), actor, program_id, body.date)
    return {"program_id": program_id, "date": body.date.isoformat(),
            "lines": [asdict(line) for line in lines]}


loans_router = ApiRouter(prefix="/api/programs/loans", tags=["programs"])


class LoanTermsIn(BaseModel):
    principal_fen: StrictInt = Field(gt=0, description="integer fen")
    annual_rate: Decimal = Field(ge=0, lt=1, description="nominal, e.g. \"0.0435\"")
    months: int = Field(ge=1, le=600)
    method: Repayment
    first_due: date
    grace_months: int = Field(0, ge=0, description="interest-only months first")


@loans_router.post("/schedule")
def loan_schedule(body: LoanTermsIn, actor: ActorDep) -> dict:
    """The repayment schedule of a loan in integer fen (principal adds up exactly; the
    rounding is cumulative, so no instalment drifts by more than a fen)."""
    terms = LoanTerms(**body.model_dump())
    terms.check()
    rows = schedule(terms)
    return {"instalments": [{**asdict(r), "due": r.due.isoformat(), "payment_fen": r.payment_fen}
                            for r in rows],
            "total_principal_fen": sum(r.principal_fen for r in rows),
            "total_interest_fen": sum(r.interest_fen for r in rows)}


class LoanProductIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    lender_name: str = Field(min_length=1, max_length=200)
    annual_rate: Decimal = Field(ge=0, lt=1, description="nominal a year, e.g. \"0.0435\"")
    penalty_rate: Decimal = Field(ge=0, lt=1, description="a year, on overdue amounts, per day")
    months: int = Field(ge=1, le=600)
    method: Repayment
    grace_months: int = Field(0, ge=0)
    fee_fen: StrictInt = Field(0, ge=0, description="due with the first instalment")
    max_principal_fen: StrictInt = Field(gt=0)
    allocation_order: list[str] = Field(
        ["penalty", "fee", "interest", "principal"],
        description="what a repayment covers first: each of penalty, fee, interest, principal once")
    prepayment: Prepayment = Field(
        Prepayment.REDUCE_PRINCIPAL,
        description="a payment beyond what is due: reduce_principal (interest on the days the "
                    "money was out, later instalments recomputed) or advance_instalments "
                    "(the next instalments paid as scheduled)")
    interest_subsidy_bp: StrictInt = Field(0, ge=0, le=10_000,
                                           description="share of interest given back, basis points")
    guarantor_kind: GuarantorKind
    guarantor_name: str = Field(min_length=1, max_length=200)
    guarantee_bp: StrictInt = Field(0, ge=0, le=10_000,
                                    description="share of a written-off loan the guarantor bears")


class LoanIn(BaseModel):
    product_id: int
    household_id: int
    principal_fen: StrictInt = Field(gt=0)
    date: date
    purpose: str = Field("", max_length=200)
    repay_from_program_id: int | None = Field(
        None, description="deduct what is due from this farming program's settlement")


class DisburseIn(BaseModel):
    date: date
    first_due: date | None = None


class RepayIn(BaseModel):
    key: str = Field(min_length=1, max_length=150, description="idempotency key of the payment")
    date: date
    amount_fen: StrictInt = Field(gt=0)


class WriteOffIn(BaseModel):
    date: date
    reason: str = Field(min_length=1, max_length=300)


def _product_out(p: LoanProduct) -> dict:
    return {"id": p.id, "name": p.name, "lender_name": p.lender_name,
            "annual_rate": p.annual_rate, "penalty_rate": p.penalty_rate, "months": p.months,
            "method": p.method, "grace_months": p.grace_months, "fee_fen": p.fee_fen,
            "max_principal_fen": p.max_principal_fen, "allocation_order": p.allocation_order,
            "prepayment": p.prepayment,
            "interest_subsidy_bp": p.interest_subsidy_bp,
            "guarantor_kind": p.guarantor_kind.value, "guarantor_name": p.guarantor_name,
            "guarantee_bp": p.guarantee_bp}


@loans_router.post("/products", status_code=201)
def create_product(body: LoanProductIn, session: SessionDep, actor: ActorDep) -> dict:
    return _product_out(microloans.create_product(session, actor, **body.model_dump()))


@loans_router.post("", status_code=201)
def grant(body: LoanIn, session: SessionDep, actor: ActorDep) -> dict:
    loan = microloans.grant(session, actor, body.product_id, body.household_id,
                            body.principal_fen, body.date, body.purpose,
                            body.repay_from_program_id)
    return microloans.position(session, loan, body.date)


@loans_router.get("/portfolio")
def portfolio(as_of: date, session: SessionDep, actor: ActorDep, region: str | None = None,
              product_id: int | None = None) -> dict:
    """Portfolio at risk (PAR 1/30/90) and ageing buckets on a business date."""
    return microloans.portfolio(session, actor, as_of, region, product_id)


@loans_router.get("/{loan_id}")
def show_loan(loan_id: int, as_of: date, session: SessionDep, actor: ActorDep) -> dict:
    return microloans.show(session, actor, loan_id, as_of)


@loans_router.post("/{loan_id}/disbursement")
def disburse(loan_id: int, body: DisburseIn, session: SessionDep, actor: ActorDep) -> dict:
    loan = microloans.disburse(session, actor, loan_id, body.date, body.first_due)
    return microloans.position(session, loan, body.date)


@loans_router.post("/{loan_id}/repayments", status_code=201)
def repay(loan_id: int, body: RepayIn, session: SessionDep, actor: ActorDep) -> dict:
    r = microloans.repay(session, actor, loan_id, body.key, body.date, body.amount_fen)
    return {"key": r.key, "date": r.paid_on.isoformat(), "amount_fen": r.amount_fen,
            "penalty_fen": r.penalty_fen, "fee_fen": r.fee_fen, "interest_fen": r.interest_fen,
            "principal_fen": r.principal_fen,
            "loan": microloans.position(session, microloans._loan(session, loan_id), body.date)}


@loans_router.post("/{loan_id}/write-off")
def write_off(loan_id: int, body: WriteOffIn, session: SessionDep, actor: ActorDep) -> dict:
    loan = microloans.write_off(session, actor, loan_id, body.date, body.reason)
    return microloans.position(session, loan, body.date)
