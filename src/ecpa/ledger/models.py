"""Ledger tables.  Append-only: a correction is a reversing transaction, never an edit
(enforced by triggers on both backends, see migration 0002)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import BigInteger, Boolean, Date, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class AccountKind(StrEnum):
    HOUSEHOLD = "household"
    COOPERATIVE = "cooperative"
    SELLER = "seller"
    ENTERPRISE = "enterprise"
    PLATFORM = "platform"
    GOVERNMENT_FUND = "government_fund"
    LENDER = "lender"
    VILLAGE_COLLECTIVE = "village_collective"
    PAYMENTS_IN_TRANSIT = "payments_in_transit"
    CONSUMER = "consumer"
    EXTERNAL = "external"


class Channel(StrEnum):
    """Seed 000 §IV: the income-increase path and the multidimensional path."""

    INDUSTRY = "industry"
    ENTREPRENEURSHIP = "entrepreneurship"
    EMPLOYMENT = "employment"
    FINANCIAL = "financial"
    EDUCATION = "education"
    HEALTH = "health"
    ECOLOGY = "ecology"
    CONSUMPTION = "consumption"


INCOME_CHANNELS = (Channel.INDUSTRY, Channel.ENTREPRENEURSHIP, Channel.EMPLOYMENT, Channel.FINANCIAL)


class Account(Base):
    __tablename__ = "ledger_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[AccountKind] = mapped_column(db_enum(AccountKind, "account_kind"))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True,
                                                     default=None)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), default=None)
    region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Period(Base):
    """An accounting month (YYYY-MM); nothing may be posted into a closed one."""

    __tablename__ = "ledger_period"

    code: Mapped[str] = mapped_column(String(7), primary_key=True)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    closed_by: Mapped[str | None] = mapped_column(String(64), default=None)


class Transaction(Base):
    __tablename__ = "ledger_transaction"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The caller's idempotency key: posting the same key twice records it once.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    period: Mapped[str] = mapped_column(String(7), index=True)
    description: Mapped[str] = mapped_column(String(500))
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transaction.id"),
                                                    unique=True, default=None)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Posting(Base):
    """One leg: positive amounts are debits, negative credits; a transaction's legs sum
    to zero (checked in Python and, on PostgreSQL, by a deferred constraint trigger)."""

    __tablename__ = "ledger_posting"
    __table_args__ = (UniqueConstraint("transaction_id", "leg"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    transaction_id: Mapped[int] = mapped_column(ForeignKey("ledger_transaction.id"), index=True)
    leg: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_account.id"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    # Where money reaches a poor household: which household, through which channel.
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True,
                                                     default=None)
    channel: Mapped[Channel | None] = mapped_column(db_enum(Channel, "ledger_channel"),
                                                    default=None)
