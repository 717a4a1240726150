from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class Role(StrEnum):
    ADMINISTRATOR = "administrator"
    COUNTY_OFFICER = "county_officer"
    VILLAGE_CADRE = "village_cadre"
    # Keeper of a village (or township, county) service station: assisted purchases,
    # consignment of villagers' products (seed 001 §IV.D, seed 004 §2.1.2).
    STATION_KEEPER = "station_keeper"
    COOPERATIVE_MANAGER = "cooperative_manager"
    ENTERPRISE = "enterprise"
    CONSUMER = "consumer"
    ANALYST = "analyst"


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(db_enum(Role, "user_role"))
    # None means nationwide (administrators, analysts, consumers).
    region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Only a hash of the bearer token is stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class AuditEntry(Base):
    """Who read or changed what, when.  Append-only."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    detail: Mapped[dict | None] = mapped_column(JSON, default=None)
