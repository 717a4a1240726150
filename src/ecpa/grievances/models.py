"""Tables of grievances (issue 6): the grievance with its responsible office and
deadline, its append-only action log, and the routing table an administrator edits."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class Category(StrEnum):
    LEFT_OUT = "left_out"  # 漏评: a poor household not identified
    WRONGLY_INCLUDED = "wrongly_included"  # 错评: a household identified that should not be
    WRONG_DATA = "wrong_data"  # a household's recorded data are wrong
    MONEY_NOT_RECEIVED = "money_not_received"  # a program's money did not arrive
    PRODUCT_COMPLAINT = "product_complaint"  # about an order on the marketplace
    OTHER = "other"


class Status(StrEnum):
    RECEIVED = "received"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    CLOSED = "closed"


OPEN_STATUSES = (Status.RECEIVED, Status.ASSIGNED, Status.IN_PROGRESS)


class FilerKind(StrEnum):
    PUBLIC = "public"  # the anonymous public form
    CONSUMER = "consumer"  # any signed-in user who is not staff
    STATION = "station"  # a station keeper on behalf of a villager
    CADRE = "cadre"
    OFFICER = "officer"


class OfficeLevel(StrEnum):
    """Where a route points; 'national' is the marketplace operator / administrators."""

    TOWNSHIP = "township"
    COUNTY = "county"
    NATIONAL = "national"


class ActionKind(StrEnum):
    FILE = "file"
    ASSIGN = "assign"
    START = "start"
    COMMENT = "comment"
    ESCALATE = "escalate"
    RESOLVE = "resolve"
    REJECT = "reject"
    CONFIRM = "confirm"
    REOPEN = "reopen"
    CLOSE = "close"


class Grievance(Base):
    __tablename__ = "grievance"
    __table_args__ = (
        Index("ix_grievance_office", "office_role", "office_region_code", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # What the filer keeps to follow progress without signing in (G-2026-7K3Q-9MXT).
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    category: Mapped[Category] = mapped_column(db_enum(Category, "grievance_category"))
    status: Mapped[Status] = mapped_column(db_enum(Status, "grievance_status"), index=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    text: Mapped[str] = mapped_column(Text)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), default=None)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("market_order.id"), default=None)
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("market_seller.id"), index=True,
                                                  default=None)
    filer_kind: Mapped[FilerKind] = mapped_column(db_enum(FilerKind, "grievance_filer_kind"))
    # The signed-in user who filed it (the keeper, for a villager at a station).
    filed_by: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    # The person aggrieved: the villager, or whoever left a name on the public form.
    contact_name: Mapped[str] = mapped_column(String(60), default="")
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    contact_phone_masked: Mapped[str | None] = mapped_column(String(20), default=None)
    # The responsible office: a role in a region (None region: nationwide administrators).
    # The role is a plain string so that new roles need no change of this table.
    office_level: Mapped[OfficeLevel] = mapped_column(db_enum(OfficeLevel, "grievance_office_level"))
    office_role: Mapped[str] = mapped_column(String(24))
    office_region_code: Mapped[str | None] = mapped_column(String(12), default=None)
    due_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    # The first deadline, kept for "resolved within deadline" after escalations move due_at.
    first_due_at: Mapped[datetime] = mapped_column(DateTime)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    resolution: Mapped[str] = mapped_column(Text, default="")
    # resolved or rejected: kept once closed, for the statistics.
    outcome: Mapped[str | None] = mapped_column(String(12), default=None)
    filed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class GrievanceAction(Base):
    """Append-only: every step taken on a grievance, with who and when.  The service
    refuses updates and deletes; the migration adds triggers that refuse them too."""

    __tablename__ = "grievance_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    grievance_id: Mapped[int] = mapped_column(ForeignKey("grievance.id"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # A username, "public" (the anonymous filer) or "system" (routing, the daily timer).
    actor: Mapped[str] = mapped_column(String(64))
    actor_role: Mapped[str | None] = mapped_column(String(24), default=None)
    action: Mapped[ActionKind] = mapped_column(db_enum(ActionKind, "grievance_action_kind"))
    from_status: Mapped[str | None] = mapped_column(String(24), default=None)
    to_status: Mapped[str] = mapped_column(String(24))
    office_role: Mapped[str | None] = mapped_column(String(24), default=None)
    office_region_code: Mapped[str | None] = mapped_column(String(12), default=None)
    note: Mapped[str] = mapped_column(Text, default="")
    # Whether the filer sees the note when tracking (internal comments stay internal).
    public: Mapped[bool] = mapped_column(Boolean, default=True)


class GrievanceRoute(Base):
    """One row of the routing table: a category (optionally only for one region level
    and/or under one region prefix) goes to an office with a deadline.  Rows override
    the built-in defaults; the most specific matching row wins."""

    __tablename__ = "grievance_route"
    __table_args__ = (UniqueConstraint("category", "region_prefix", "region_level"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    category: Mapped[Category] = mapped_column(db_enum(Category, "grievance_category"))
    # "" everywhere; else a province / county / township code prefix.
    region_prefix: Mapped[str] = mapped_column(String(12), default="")
    # "" any level; else village / township / county (the grievance region's level).
    region_level: Mapped[str] = mapped_column(String(12), default="")
    office_level: Mapped[OfficeLevel] = mapped_column(db_enum(OfficeLevel, "grievance_office_level"))
    office_role: Mapped[str] = mapped_column(String(24))
    deadline_days: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
