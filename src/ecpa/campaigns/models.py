"""Tables of campaigns: consumption poverty alleviation days (消费扶贫日) with their
discount rules and per-buyer limits, and crowdfunding pre-sales (众筹预售) with the
record of how each pledge was settled at the deadline.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
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


class Campaign(Base):
    """A consumption poverty alleviation day: products from the featured counties are
    discounted in the window [starts_at, ends_at)."""

    __tablename__ = "campaign"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="window"),
                      CheckConstraint("percent_off_bp >= 0 AND percent_off_bp < 10000",
                                      name="percent_off"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    counties: Mapped[list] = mapped_column(JSON)  # featured county codes
    poverty_linked_only: Mapped[bool] = mapped_column(Boolean, default=False)
    percent_off_bp: Mapped[int] = mapped_column(Integer, default=0)  # basis points
    # 满减: so many fen off once the campaign items reach the threshold (list prices).
    threshold_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    threshold_off_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # Units per SKU per buyer over the whole campaign; None: no limit.
    per_buyer_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CampaignBuyer(Base):
    """One row per (campaign, buyer), locked by the checkout so that one buyer's
    concurrent checkouts count each other's units against the limit."""

    __tablename__ = "campaign_buyer"
    __table_args__ = (UniqueConstraint("campaign_id", "buyer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaign.id"))
    buyer: Mapped[str] = mapped_column(String(64))


class PresaleState(StrEnum):
    OPEN = "open"
    SUCCEEDED = "succeeded"  # target met: paid pledges go on to shipment
    REFUNDING = "refunding"  # target missed, refunds under way (a re-run finishes them)
    FAILED = "failed"  # target missed, every paid pledge refunded


class Presale(Base):
    """A crowdfunding pre-sale of one SKU, created for it with stock = what can be
    delivered.  Its pledges are the orders with a line on the SKU created in
    [opens_at, deadline)."""

    __tablename__ = "campaign_presale"
    __table_args__ = (CheckConstraint("target_units > 0", name="target_positive"),
                      CheckConstraint("deadline > opens_at", name="window"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("market_sku.id"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    target_units: Mapped[int] = mapped_column(Integer)
    opens_at: Mapped[datetime] = mapped_column(DateTime)
    deadline: Mapped[datetime] = mapped_column(DateTime, index=True)
    delivery_date: Mapped[date] = mapped_column(Date)  # promised to the buyers
    state: Mapped[PresaleState] = mapped_column(db_enum(PresaleState, "presale_state"), index=True)
    # The outcome, fixed once at the close so that a re-run never decides differently.
    paid_units_at_close: Mapped[int | None] = mapped_column(Integer, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    closed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SettlementAction(StrEnum):
    KEPT = "kept"  # paid, the pre-sale succeeded: goes on to shipment
    REFUNDED = "refunded"
    CANCELLED = "cancelled"  # never paid (or cancelled before the close): nothing to give back
    NOT_REFUNDABLE = "not_refundable"  # completed before the close: sellers already paid


class PresaleSettlement(Base):
    """What the close did with each pledge: the progress a re-run resumes from."""

    __tablename__ = "campaign_presale_settlement"
    __table_args__ = (UniqueConstraint("presale_id", "order_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    presale_id: Mapped[int] = mapped_column(ForeignKey("campaign_presale.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_order.id"))
    action: Mapped[SettlementAction] = mapped_column(db_enum(SettlementAction, "presale_action"))
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
