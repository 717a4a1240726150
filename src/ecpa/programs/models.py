"""Tables of the programs: contract farming ("costing nothing") with buy-back."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, BigInteger, Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
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
