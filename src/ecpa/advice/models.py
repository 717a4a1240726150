"""The questions villagers ask the experts from their village's page (seed 001 §IV.D:
guidance on rural production by experts, legal aid for rural disputes), routed to the
county of the village, and the county's answer."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class AdviceCategory(StrEnum):
    FARMING = "farming"  # planting, breeding, disease, markets
    LEGAL = "legal"  # rural disputes: land, wages, family, contracts
    OTHER = "other"


class AdviceQuestion(Base):
    __tablename__ = "advice_question"
    __table_args__ = (Index("ix_advice_question_queue", "county_code", "answered_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # What the asker keeps to read the answer without signing in (A-2026-7K3Q-9MXT).
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    # Routing: the county of the village answers.
    county_code: Mapped[str] = mapped_column(String(6))
    category: Mapped[AdviceCategory] = mapped_column(db_enum(AdviceCategory, "advice_category"))
    text: Mapped[str] = mapped_column(Text)
    contact_name: Mapped[str] = mapped_column(String(60), default="")
    # Personal data: AES-GCM ciphertext (ecpa.privacy) and the masked form to show.
    contact_phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    contact_phone_masked: Mapped[str | None] = mapped_column(String(20), default=None)
    asked_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    answered_by: Mapped[str | None] = mapped_column(String(64), default=None)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
