"""Tables of data quality: the runs an officer made for a region, and the worklist items
they found, which cadres see for their village until a later run no longer finds them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class IssueState(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


class QualityRun(Base):
    __tablename__ = "quality_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(String(12), index=True)
    year: Mapped[int] = mapped_column(Integer)
    run_by: Mapped[str] = mapped_column(String(64))
    run_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    households: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[int] = mapped_column(Integer, default=0)
    opened: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)


class QualityIssue(Base):
    """One finding of one rule on one household (or member).  ``issue_key`` makes a
    rerun update the same item instead of adding another."""

    __tablename__ = "quality_issue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    issue_key: Mapped[str] = mapped_column(String(64), unique=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"),
                                              index=True)
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("member.id", ondelete="CASCADE"), default=None)
    # Copied from the household so that a village's list is one indexed lookup.
    village_code: Mapped[str] = mapped_column(String(12), index=True)
    rule_code: Mapped[str] = mapped_column(String(16))
    severity: Mapped[str] = mapped_column(String(8))
    field: Mapped[str] = mapped_column(String(40))
    value: Mapped[str | None] = mapped_column(Text, default=None)
    state: Mapped[IssueState] = mapped_column(db_enum(IssueState, "quality_issue_state"),
                                              default=IssueState.OPEN)
    first_run_id: Mapped[int] = mapped_column(ForeignKey("quality_run.id"))
    last_run_id: Mapped[int] = mapped_column(ForeignKey("quality_run.id"))
    found_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
