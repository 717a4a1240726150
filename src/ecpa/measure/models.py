"""Tables of measurement: proposals that dynamic monitoring writes back to the registry
for review (the targeting workflows turn them into reviewed cases)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum
from ..registry.models import MonitoringCategory


class ProposalState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DISMISSED = "dismissed"


class MonitoringProposal(Base):
    __tablename__ = "monitoring_proposal"
    __table_args__ = (UniqueConstraint("household_id", "year", "category"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id", ondelete="CASCADE"),
                                              index=True)
    year: Mapped[int] = mapped_column(Integer)
    # The monitoring object categories of the registry (脱贫不稳定户, 边缘易致贫户, 突发严重困难户).
    category: Mapped[MonitoringCategory] = mapped_column(db_enum(MonitoringCategory, "risk_category"))
    reasons: Mapped[str] = mapped_column(Text)
    per_capita_income_fen: Mapped[int | None] = mapped_column(BigInteger, default=None)
    state: Mapped[ProposalState] = mapped_column(db_enum(ProposalState, "proposal_state"),
                                                 default=ProposalState.OPEN)
    proposed_by: Mapped[str] = mapped_column(String(64))
    proposed_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
