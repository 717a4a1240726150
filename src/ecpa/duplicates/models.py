"""The queue of candidate duplicate pairs, their matching members, and merge records."""

from __future__ import annotations

from datetime import datetime
from enum import IntFlag, StrEnum

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class Reason(IntFlag):
    """Why two households look like one; stored as a bit mask so that set-based SQL can
    OR the reasons of a pair together on both backends."""

    ID_NUMBER = 1
    NAME_BIRTH_VILLAGE = 2
    PHONE = 4


REASON_NAMES = {Reason.ID_NUMBER: "id_number", Reason.NAME_BIRTH_VILLAGE: "name_birth_village",
                Reason.PHONE: "phone"}


def reason_names(mask: int) -> list[str]:
    return [name for bit, name in REASON_NAMES.items() if mask & bit]


class CandidateState(StrEnum):
    PENDING = "pending"
    DISTINCT = "distinct"
    MERGED = "merged"
    # One of its households was merged into a third one: the pair no longer exists as
    # such; the next detection run finds the survivor's pair if there is one.
    SUPERSEDED = "superseded"


class DuplicateCandidate(Base):
    """A pair of households (``household_a_id < household_b_id``) queued once."""

    __tablename__ = "duplicate_candidate"
    __table_args__ = (UniqueConstraint("household_a_id", "household_b_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_a_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    household_b_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    reasons: Mapped[int] = mapped_column(Integer)  # Reason bits ever found for the pair
    # Reasons the officer saw when deciding "distinct": only a new reason reopens the pair.
    decided_reasons: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[CandidateState] = mapped_column(
        db_enum(CandidateState, "duplicate_state"), default=CandidateState.PENDING, index=True)
    source: Mapped[str] = mapped_column(String(16))  # scan / import / manual
    found_by: Mapped[str] = mapped_column(String(64))
    found_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    note: Mapped[str] = mapped_column(Text, default="")


class DuplicateMatch(Base):
    """The evidence for a pair: which members (or the household phones) matched."""

    __tablename__ = "duplicate_match"
    __table_args__ = (Index("ix_duplicate_match_candidate", "candidate_id", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("duplicate_candidate.id"))
    reason: Mapped[int] = mapped_column(Integer)
    # Null when the household-level phone matched rather than a member's.
    member_a_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), default=None)
    member_b_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), default=None)


class HouseholdMerge(Base):
    """One merge decision: what moved from the merged household to the survivor and
    what stayed behind, linked (``detail``), and who decided."""

    __tablename__ = "household_merge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    # Not unique: a merge undone leaves its record, and the household may be merged again
    # (at most one merge of a household is in force: its merged_into_id).
    merged_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    candidate_id: Mapped[int | None] = mapped_column(ForeignKey("duplicate_candidate.id"),
                                                     default=None)
    decided_by: Mapped[str] = mapped_column(String(64))
    decided_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict] = mapped_column(JSON)
    # Set when the merge is undone (``service.unmerge``): who, when, why, what went back.
    undone_by: Mapped[str | None] = mapped_column(String(64), default=None)
    undone_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    undo_reason: Mapped[str | None] = mapped_column(Text, default=None)
    undo_detail: Mapped[dict | None] = mapped_column(JSON, default=None)


# Detection joins members on (name, birth date) before the village; with the household
# id in the index the join is an index-only merge join (18 s -> a few s on 3.3M members).
from ..registry.models import Member

Index("ix_member_name_birth_date", Member.name, Member.birth_date, Member.household_id)
