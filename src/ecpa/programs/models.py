"""Tables of the programs: contract farming ("costing nothing") with buy-back."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class GuarantorKind(StrEnum):
    GOVERNMENT = "government"
    COOPERATIVE = "cooperative"
    ENTERPRISE = "enterprise"


class FarmingProgram(Base):
    """A contract-farming cycle: inputs advanced per unit, a growing cycle, buy-back at a
    protective price: max(floor, market price + premium) per unit, times the grade factor."""

    __tablename__ = "farming_program"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    product: Mapped[str] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(20))  # chicken, jin, head …
    cycle_days: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[date] = mapped_column(Date)
    # Inputs (chicks, feed, seed, fertiliser) advanced per unit enrolled, integer fen.
    input_cost_per_unit_fen: Mapped[int] = mapped_column(BigInteger)
    floor_price_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    premium_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # Grade -> price factor in basis points (10000 = full price).
    grades: Mapped[dict] = mapped_column(JSON)
    guarantor_kind: Mapped[GuarantorKind] = mapped_column(db_enum(GuarantorKind, "guarantor_kind"))
    guarantor_name: Mapped[str] = mapped_column(String(200))
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    enterprise_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class MarketPrice(Base):
    __tablename__ = "farming_market_price"
    __table_args__ = (UniqueConstraint("program_id", "price_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("farming_program.id"), index=True)
    price_date: Mapped[date] = mapped_column(Date)
    price_fen: Mapped[int] = mapped_column(BigInteger)


class Enrolment(Base):
    __tablename__ = "farming_enrolment"
    __table_args__ = (UniqueConstraint("program_id", "household_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    program_id: Mapped[int] = mapped_column(ForeignKey("farming_program.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    units: Mapped[int] = mapped_column(Integer)
    enrolled_on: Mapped[date] = mapped_column(Date)
    lost_units: Mapped[int] = mapped_column(Integer, default=0)


class BuyBack(Base):
    """One delivery bought back from a household, priced when it was recorded."""

    __tablename__ = "farming_buyback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    enrolment_id: Mapped[int] = mapped_column(ForeignKey("farming_enrolment.id"), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    delivered_on: Mapped[date] = mapped_column(Date)
    quantity: Mapped[int] = mapped_column(Integer)
    grade: Mapped[str] = mapped_column(String(20))
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    amount_fen: Mapped[int] = mapped_column(BigInteger)


# --- Microloans: no collateral, a guarantor, repaid by hand or from buy-back proceeds ---


class LoanStatus(StrEnum):
    APPROVED = "approved"  # granted, not yet disbursed
    ACTIVE = "active"
    CLOSED = "closed"  # repaid in full
    WRITTEN_OFF = "written_off"


class RepaymentSource(StrEnum):
    MANUAL = "manual"  # paid at the lender's counter or by transfer
    BUYBACK = "buyback"  # deducted from a contract-farming settlement


class LoanProduct(Base):
    """A loan product: its terms, what a repayment covers first, who guarantees it and
    what share of a written-off loan the guarantor bears, and the share of the interest
    a government fund gives back to the household (the interest subsidy, 贴息)."""

    __tablename__ = "loan_product"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    lender_name: Mapped[str] = mapped_column(String(200))
    # Rates are Decimal strings ("0.0435"): exact on every backend.
    annual_rate: Mapped[str] = mapped_column(String(16))
    penalty_rate: Mapped[str] = mapped_column(String(16))  # a year, on overdue amounts per day
    months: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(24))
    grace_months: Mapped[int] = mapped_column(Integer, default=0)
    fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # due with the first instalment
    max_principal_fen: Mapped[int] = mapped_column(BigInteger)
    # e.g. ["penalty", "fee", "interest", "principal"]
    allocation_order: Mapped[list] = mapped_column(JSON)
    # What a payment beyond what is due does (loans.Prepayment).  Products made before
    # the choice existed paid instalments in advance.
    prepayment: Mapped[str] = mapped_column(String(24), server_default="advance_instalments")
    interest_subsidy_bp: Mapped[int] = mapped_column(Integer, default=0)
    guarantor_kind: Mapped[GuarantorKind] = mapped_column(db_enum(GuarantorKind, "guarantor_kind"))
    guarantor_name: Mapped[str] = mapped_column(String(200))
    guarantee_bp: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Loan(Base):
    """One household's loan.  Its terms are copied from the product when it is granted,
    so that a later change to the product does not change a running loan."""

    __tablename__ = "loan"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("loan_product.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    principal_fen: Mapped[int] = mapped_column(BigInteger)
    annual_rate: Mapped[str] = mapped_column(String(16))
    penalty_rate: Mapped[str] = mapped_column(String(16))
    months: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(24))
    grace_months: Mapped[int] = mapped_column(Integer)
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    allocation_order: Mapped[list] = mapped_column(JSON)
    prepayment: Mapped[str] = mapped_column(String(24), server_default="advance_instalments")
    purpose: Mapped[str] = mapped_column(String(200), default="")
    # Deducted automatically from this farming program's settlement, when set.
    repay_from_program_id: Mapped[int | None] = mapped_column(
        ForeignKey("farming_program.id"), index=True, default=None)
    status: Mapped[LoanStatus] = mapped_column(db_enum(LoanStatus, "loan_status"))
    granted_on: Mapped[date] = mapped_column(Date)
    disbursed_on: Mapped[date | None] = mapped_column(Date, default=None)
    first_due: Mapped[date | None] = mapped_column(Date, default=None)
    closed_on: Mapped[date | None] = mapped_column(Date, default=None)
    created_by: Mapped[str] = mapped_column(String(64))


class LoanRepayment(Base):
    """One repayment and how it was allocated (the same split as its ledger legs)."""

    __tablename__ = "loan_repayment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loan.id"), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    paid_on: Mapped[date] = mapped_column(Date)
    source: Mapped[RepaymentSource] = mapped_column(db_enum(RepaymentSource, "repayment_source"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    penalty_fen: Mapped[int] = mapped_column(BigInteger)
    fee_fen: Mapped[int] = mapped_column(BigInteger)
    interest_fen: Mapped[int] = mapped_column(BigInteger)
    principal_fen: Mapped[int] = mapped_column(BigInteger)
