"""Tables of livelihoods: training sessions and who attended them, shops and businesses
opened with their monthly net earnings, jobs with their wage payments.

Attendance, shops and jobs belong to a person (a registry ``Member``); the household is
reached through the member.  Amounts are integer fen; what reaches a household is also
posted to the ledger, which is the source of the income figures."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
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


class TrainingTopic(StrEnum):
    ECOMMERCE_OPERATION = "ecommerce_operation"   # opening and running an online shop
    LIVE_STREAMING = "live_streaming"             # live-streaming sales
    FARMING_TECHNIQUE = "farming_technique"
    PROCESSING = "processing"                     # processing and packaging of produce
    LOGISTICS = "logistics"
    SMARTPHONE = "smartphone"                     # using a phone to buy, sell and pay
    VOCATIONAL = "vocational"                     # trades for employment
    OTHER = "other"


class ShopKind(StrEnum):
    ONLINE_SHOP = "online_shop"
    LIVE_STREAM = "live_stream"
    SERVICE_STATION = "service_station"           # village e-commerce service station
    PROCESSING_WORKSHOP = "processing_workshop"
    SHOP = "shop"                                 # a physical store or stall
    OTHER = "other"


class WageBasis(StrEnum):
    MONTHLY = "monthly"
    DAILY = "daily"


class JobKind(StrEnum):
    FULL_TIME = "full_time"
    PART_TIME = "part_time"                       # e.g. rural promoter (seed 000 §III.B.5)
    SEASONAL = "seasonal"
    PUBLIC_WELFARE = "public_welfare"             # 公益岗位


class TrainingSession(Base):
    __tablename__ = "livelihood_training"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    topic: Mapped[TrainingTopic] = mapped_column(db_enum(TrainingTopic, "training_topic"))
    organiser: Mapped[str] = mapped_column(String(200))
    organiser_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), default=None)
    # Where it was held: a county, township or village.
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    start_date: Mapped[date] = mapped_column(Date, index=True)
    end_date: Mapped[date] = mapped_column(Date)
    hours: Mapped[int] = mapped_column(Integer)
    # Cadres and enterprise staff trained who are not in the registry: counted, not named.
    external_attendees: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Attendance(Base):
    __tablename__ = "livelihood_attendance"
    __table_args__ = (UniqueConstraint("session_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("livelihood_training.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    certificate_no: Mapped[str | None] = mapped_column(String(64), default=None)
    subsidy_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Shop(Base):
    """A shop or business a member opened (entrepreneurship)."""

    __tablename__ = "livelihood_shop"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    # The training that led to it, if any (one the member attended).
    training_id: Mapped[int | None] = mapped_column(ForeignKey("livelihood_training.id"),
                                                    default=None)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[ShopKind] = mapped_column(db_enum(ShopKind, "shop_kind"))
    platform: Mapped[str | None] = mapped_column(String(60), default=None)
    opened_on: Mapped[date] = mapped_column(Date, index=True)
    closed_on: Mapped[date | None] = mapped_column(Date, default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ShopEarning(Base):
    """A shop's net earnings of one month (negative: a loss)."""

    __tablename__ = "livelihood_shop_earning"
    __table_args__ = (UniqueConstraint("shop_id", "period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("livelihood_shop.id"), index=True)
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    net_fen: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Job(Base):
    """A member's employment: by a registered organisation or a named outside employer."""

    __tablename__ = "livelihood_job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("member.id"), index=True)
    employer_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True,
                                                    default=None)
    employer_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(100), default="")
    kind: Mapped[JobKind] = mapped_column(db_enum(JobKind, "job_kind"))
    # Employment transfer (转移就业): the work is outside the home county.
    transfer: Mapped[bool] = mapped_column(Boolean, default=False)
    wage_basis: Mapped[WageBasis] = mapped_column(db_enum(WageBasis, "wage_basis"))
    wage_fen: Mapped[int] = mapped_column(BigInteger)  # a month's or a day's wage
    start_date: Mapped[date] = mapped_column(Date, index=True)
    end_date: Mapped[date | None] = mapped_column(Date, default=None)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WagePayment(Base):
    __tablename__ = "livelihood_wage_payment"
    __table_args__ = (UniqueConstraint("job_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("livelihood_job.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    period: Mapped[str] = mapped_column(String(7))  # the month worked, YYYY-MM
    days: Mapped[int | None] = mapped_column(Integer, default=None)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
