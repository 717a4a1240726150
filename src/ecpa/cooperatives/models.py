"""Tables of the cooperatives: a charter per year, memberships with land, labour and
capital, labour days, members' trade with the cooperative, and year-end distributions
with one line per member household."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
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


class Charter(Base):
    """How a cooperative pays wages and shares its surplus in one year."""

    __tablename__ = "coop_charter"
    __table_args__ = (UniqueConstraint("cooperative_id", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    # A preset key of models.toml ("gansu-3.2" …) or "custom".
    model: Mapped[str] = mapped_column(String(20))
    wage_per_day_fen: Mapped[int] = mapped_column(BigInteger)
    shares_per_mu: Mapped[int] = mapped_column(Integer)
    # None: capital earns no shares (or labour days none).
    fen_per_capital_share: Mapped[int | None] = mapped_column(BigInteger, default=None)
    labour_days_per_share: Mapped[int | None] = mapped_column(Integer, default=None)
    collective_bp: Mapped[int] = mapped_column(Integer)
    reserve_bp: Mapped[int] = mapped_column(Integer)
    # The share of the surplus left after the collective and the reserve that goes back
    # to the members by their trade with the cooperative (0: none; else at least 6000).
    trade_return_bp: Mapped[int] = mapped_column(Integer, server_default="0")
    collective_region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"),
                                                               default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Membership(Base):
    """A household's stake in a cooperative over a span of time.  A change of stake is a
    leave and a new join on the same day, so that dividends can weigh each stake by the
    days it was held; at most one open membership per household and cooperative."""

    __tablename__ = "coop_membership"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    joined_on: Mapped[date] = mapped_column(Date)
    left_on: Mapped[date | None] = mapped_column(Date, default=None)
    # Land in hundredths of a mu: exact, as land contracts record it (to 0.01 mu).
    land_centimu: Mapped[int] = mapped_column(Integer)
    labourers: Mapped[int] = mapped_column(Integer)
    capital_fen: Mapped[int] = mapped_column(BigInteger)


class LabourRecord(Base):
    """Labour days a member household worked for the cooperative in a month."""

    __tablename__ = "coop_labour"
    __table_args__ = (UniqueConstraint("cooperative_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))  # the caller's idempotency key
    period: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM
    days: Mapped[int] = mapped_column(Integer)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class TradeRecord(Base):
    """A member household's trade with its cooperative — produce delivered to it or
    inputs bought from it — by value, as the member's account (成员账户) keeps it; the
    money itself moves elsewhere (a buy-back, the marketplace, cash)."""

    __tablename__ = "coop_trade"
    __table_args__ = (UniqueConstraint("cooperative_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))  # the caller's idempotency key
    traded_on: Mapped[date] = mapped_column(Date, index=True)
    product: Mapped[str] = mapped_column(String(100))
    value_fen: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Distribution(Base):
    """A year's surplus, distributed once (its ledger transaction has a fixed key)."""

    __tablename__ = "coop_distribution"
    __table_args__ = (UniqueConstraint("cooperative_id", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperative_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    business_date: Mapped[date] = mapped_column(Date)
    surplus_fen: Mapped[int] = mapped_column(BigInteger)
    collective_fen: Mapped[int] = mapped_column(BigInteger)
    reserve_fen: Mapped[int] = mapped_column(BigInteger)
    # Returned by trade, and the members' trade in the year it was divided by.
    trade_return_fen: Mapped[int] = mapped_column(BigInteger, server_default="0")
    total_trade_fen: Mapped[int] = mapped_column(BigInteger, server_default="0")
    dividends_fen: Mapped[int] = mapped_column(BigInteger)  # by shares
    # Total shares as an exact fraction "numerator/denominator" (time-weighted shares
    # are rarely whole); per-member shares below likewise.
    total_shares: Mapped[str] = mapped_column(String(80))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DistributionLine(Base):
    __tablename__ = "coop_distribution_line"
    __table_args__ = (UniqueConstraint("distribution_id", "household_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    distribution_id: Mapped[int] = mapped_column(ForeignKey("coop_distribution.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    land_shares: Mapped[str] = mapped_column(String(80))
    capital_shares: Mapped[str] = mapped_column(String(80))
    labour_shares: Mapped[str] = mapped_column(String(80))
    trade_fen: Mapped[int] = mapped_column(BigInteger, server_default="0")
    trade_return_fen: Mapped[int] = mapped_column(BigInteger, server_default="0")
    dividend_fen: Mapped[int] = mapped_column(BigInteger)  # by shares
