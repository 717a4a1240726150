"""Tables of the service network (seed 001 §IV.D, seed 004 §2.1.2): county centre,
township and village stations with their keepers; delivery zones by where the buyer
lives; assisted purchases with the keeper's commission; villagers' products taken in
for sale (consignment) and what of them sold."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
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


class StationLevel(StrEnum):
    """The three levels of the network: county service centre, township, village."""

    COUNTY = "county"
    TOWNSHIP = "township"
    VILLAGE = "village"


class Zone(StrEnum):
    """Where the buyer is, as the couriers see it."""

    COUNTY_TOWN = "county_town"  # an address at the county itself
    TOWNSHIP = "township"
    VILLAGE = "village"


class Station(Base):
    __tablename__ = "station"
    __table_args__ = (CheckConstraint("commission_bp >= 0 AND commission_bp <= 10000",
                                      name="commission_bp_range"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # One station per region: the county centre, a township's, a village's.
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), unique=True)
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    level: Mapped[StationLevel] = mapped_column(db_enum(StationLevel, "station_level"))
    name: Mapped[str] = mapped_column(String(200))
    # A user with role station_keeper scoped to the station's region.
    keeper_username: Mapped[str | None] = mapped_column(String(64), index=True, default=None)
    phone: Mapped[str] = mapped_column(String(32), default="")
    # Commission on assisted purchases, basis points of the items total (1000 = 10 %).
    commission_bp: Mapped[int] = mapped_column(Integer, default=1000)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DeliveryZone(Base):
    """The fee and time of delivery to one zone, set for a county (the default of its
    townships and villages) or for one township (overriding the county's)."""

    __tablename__ = "station_delivery_zone"
    __table_args__ = (UniqueConstraint("region_code", "zone"),
                      CheckConstraint("fee_fen >= 0 AND per_kg_fen >= 0", name="fees_not_negative"),
                      CheckConstraint("days >= 0 AND base_weight_g >= 0", name="days_weight_range"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"))  # county or township
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    zone: Mapped[Zone] = mapped_column(db_enum(Zone, "delivery_zone"))
    fee_fen: Mapped[int] = mapped_column(BigInteger)  # up to base_weight_g
    days: Mapped[int] = mapped_column(Integer)
    base_weight_g: Mapped[int] = mapped_column(Integer, default=1000)
    per_kg_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # each started kg above the base
    # False where couriers stop short of the address (seed 001 §III.D: express mostly
    # reaches only the township): the parcel waits at the nearest station for pickup.
    door_delivery: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AssistedOrder(Base):
    """A purchase a keeper placed for a villager, and the commission it earns."""

    __tablename__ = "station_assisted_order"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_order.id"), unique=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("station.id"), index=True)
    keeper_username: Mapped[str] = mapped_column(String(64))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), default=None)
    items_fen: Mapped[int] = mapped_column(BigInteger)
    commission_bp: Mapped[int] = mapped_column(Integer)  # the station's rate when recorded
    commission_fen: Mapped[int] = mapped_column(BigInteger)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transaction.id"),
                                                       default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class Consignment(Base):
    """A villager household's product taken in at the station for sale."""

    __tablename__ = "station_consignment"
    __table_args__ = (UniqueConstraint("station_id", "key"),
                      CheckConstraint("quantity > 0 AND sold_quantity >= 0 "
                                      "AND sold_quantity <= quantity", name="quantity_range"),
                      CheckConstraint("price_fen > 0", name="price_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("station.id"), index=True)
    # The caller's idempotency key: a receipt sent twice over a poor connection counts once.
    key: Mapped[str] = mapped_column(String(100))
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    product: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit: Mapped[str] = mapped_column(String(20))
    price_fen: Mapped[int] = mapped_column(BigInteger)  # agreed, per unit
    received_on: Mapped[date] = mapped_column(Date)
    # Kept with the sales so that the database itself refuses selling more than came in.
    sold_quantity: Mapped[int] = mapped_column(Integer, default=0)
    received_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsignmentSale(Base):
    __tablename__ = "station_consignment_sale"
    __table_args__ = (UniqueConstraint("consignment_id", "key"),
                      CheckConstraint("quantity > 0 AND amount_fen > 0", name="sale_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consignment_id: Mapped[int] = mapped_column(ForeignKey("station_consignment.id"), index=True)
    key: Mapped[str] = mapped_column(String(100))  # the caller's idempotency key
    quantity: Mapped[int] = mapped_column(Integer)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    sold_on: Mapped[date] = mapped_column(Date)
    transaction_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_transaction.id"),
                                                       default=None)
    recorded_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
