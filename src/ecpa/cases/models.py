"""Tables of the targeting cases.  Actions, objections and attachments are append-only:
a case's history is what happened, in order; its current step is derived from it and
kept on the case row for queries."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class CaseKind(StrEnum):
    IDENTIFICATION = "identification"
    EXIT = "exit"
    MONITORING_ENTRY = "monitoring_entry"
    MONITORING_EXIT = "monitoring_exit"
    DATA_CHANGE = "data_change"


class CaseState(StrEnum):
    OPEN = "open"  # waiting for its next step
    IN_NOTICE = "in_notice"  # its public notice is running
    OBJECTED = "objected"  # an objection during the notice stopped it for review
    APPROVED = "approved"  # the last step taken: the registry was written
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


class Case(Base):
    __tablename__ = "targeting_case"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[CaseKind] = mapped_column(db_enum(CaseKind, "case_kind"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    state: Mapped[CaseState] = mapped_column(db_enum(CaseState, "case_state"), index=True)
    step: Mapped[int] = mapped_column(Integer)  # index of the next step to take
    reason: Mapped[str] = mapped_column(Text)
    # Where it came from: "manual", or "assessment:<year>" for a measurement proposal.
    origin: Mapped[str] = mapped_column(String(40), default="manual")
    # What the case changes: the monitoring category, or a data change's fields.
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    notice_start: Mapped[date | None] = mapped_column(Date, default=None)
    notice_end: Mapped[date | None] = mapped_column(Date, default=None)
    opened_by: Mapped[str] = mapped_column(String(64))
    opened_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class CaseAction(Base):
    __tablename__ = "targeting_case_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("targeting_case.id"), index=True)
    step: Mapped[str] = mapped_column(String(40))  # the step's key, or "-" for a comment
    action: Mapped[str] = mapped_column(String(20))  # took, rejected, withdrew, commented, …
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(24))
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Objection(Base):
    """An objection filed during a public notice (by anyone, named or not)."""

    __tablename__ = "targeting_objection"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("targeting_case.id"), index=True)
    filed_by: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    filed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    upheld: Mapped[bool | None] = mapped_column(default=None)  # None: not yet reviewed
    reviewed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    review: Mapped[str | None] = mapped_column(Text, default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class Attachment(Base):
    __tablename__ = "targeting_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("targeting_case.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    added_by: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
