"""Tables of traceability: batches of a marketplace product, the households and cooperative
that produced them, certificates, and the append-only log of EPCIS events.

An event row is never updated or deleted.  Its ``event_id`` is the canonical EPCIS event
hash, unique per kind: capturing the same event twice finds the first row.  An error
declaration carries the same hash as the event it declares erroneous (the hash leaves the
errorDeclaration out), so it is stored as a second row of kind ``error_declaration``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class BatchKind(StrEnum):
    HARVEST = "harvest"
    SLAUGHTER = "slaughter"


class CertificateKind(StrEnum):
    GAP = "gap"  # good agricultural practice
    GEOGRAPHICAL_INDICATION = "geographical_indication"
    QS_SC = "qs_sc"  # QS / SC food production licence
    ORGANIC = "organic"


class EventKind(StrEnum):
    EVENT = "event"
    ERROR_DECLARATION = "error_declaration"


class Batch(Base):
    __tablename__ = "trace_batch"
    __table_args__ = (UniqueConstraint("gtin", "lot", name="uq_trace_batch_gtin_lot"),
                      CheckConstraint("quantity > 0", name="quantity_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("market_product.id"), index=True)
    sku_id: Mapped[int | None] = mapped_column(ForeignKey("market_sku.id"), default=None)
    # GTIN-14 with a checked check digit: the product table belongs to the marketplace.
    gtin: Mapped[str] = mapped_column(String(14))
    lot: Mapped[str] = mapped_column(String(20))
    origin_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    cooperative_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), default=None)
    kind: Mapped[BatchKind] = mapped_column(db_enum(BatchKind, "batch_kind"))
    produced_on: Mapped[date] = mapped_column(Date)  # harvest or slaughter date
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    uom: Mapped[str] = mapped_column(String(3))  # UN/ECE Rec. 20 code, as EPCIS wants it
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class BatchHousehold(Base):
    __tablename__ = "trace_batch_household"
    __table_args__ = (UniqueConstraint("batch_id", "household_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("trace_batch.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)


class Certificate(Base):
    """A certificate of a batch or of a seller (then valid for all its batches)."""

    __tablename__ = "trace_certificate"
    __table_args__ = (CheckConstraint("(batch_id IS NULL) <> (seller_id IS NULL)", name="one_holder"),
                      CheckConstraint("valid_to >= valid_from", name="valid_period"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("trace_batch.id"), index=True, default=None)
    seller_id: Mapped[int | None] = mapped_column(ForeignKey("market_seller.id"), index=True,
                                                  default=None)
    kind: Mapped[CertificateKind] = mapped_column(db_enum(CertificateKind, "certificate_kind"))
    number: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(String(200))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Event(Base):
    __tablename__ = "trace_event"
    __table_args__ = (UniqueConstraint("event_id", "kind", name="uq_trace_event_event_id_kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), index=True)  # ni:///sha-256;…?ver=CBV2.0
    kind: Mapped[EventKind] = mapped_column(db_enum(EventKind, "trace_event_kind"))
    event_type: Mapped[str] = mapped_column(String(32))
    biz_step: Mapped[str | None] = mapped_column(String(200), default=None)
    event_time: Mapped[datetime] = mapped_column(DateTime, index=True)  # UTC
    body: Mapped[dict] = mapped_column(JSON)  # the event as exported, eventID included
    recorded_by: Mapped[str] = mapped_column(String(64))
    record_time: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EventBatch(Base):
    """Which batches an event names (a transformation names its inputs and outputs)."""

    __tablename__ = "trace_event_batch"
    __table_args__ = (UniqueConstraint("event_row_id", "batch_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_row_id: Mapped[int] = mapped_column(ForeignKey("trace_event.id"), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("trace_batch.id"), index=True)
    # How the batch takes part: "object", "child", "input" or "output".
    role: Mapped[str] = mapped_column(String(10))
