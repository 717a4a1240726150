"""Tables of the marketplace: sellers and their poverty-linked certificate, county
pavilions, products and SKUs, carts, orders, payments, refunds and shipments.

Stock is one integer per SKU, the quantity still free to sell; a checkout takes it (the
reservation) and an expired or cancelled order gives it back.  The database refuses a
negative stock, so no bug in the code can oversell either.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from ..db import Base, utcnow
from ..enums import db_enum


class SellerKind(StrEnum):
    HOUSEHOLD = "household"
    COOPERATIVE = "cooperative"
    ENTERPRISE = "enterprise"


class LinkKind(StrEnum):
    """How a seller is linked to a registered poor household."""

    MEMBER = "member"  # the household is the seller, or a member of the cooperative
    SUPPLIER = "supplier"
    EMPLOYEE = "employee"


class Category(StrEnum):
    """Seed 001 Table I / seed 002 §3.1: what poor counties sell."""

    FOOD = "food"
    AGRICULTURAL = "agricultural"  # local agricultural products
    HANDICRAFT = "handicraft"
    CLOTHING = "clothing"
    HOUSEHOLD_GOODS = "household_goods"
    MEANS_OF_PRODUCTION = "means_of_production"  # seed, fertiliser, tools
    TOURISM = "tourism"  # farm stays, scenery tickets


class Seller(Base):
    __tablename__ = "market_seller"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[SellerKind] = mapped_column(db_enum(SellerKind, "seller_kind"))
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), default=None)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), default=None)
    # The user who manages the shop: only that user (and officers) edit its products.
    manager_username: Mapped[str] = mapped_column(String(64), index=True)
    # Current state of the certificate; its history is in market_certification.
    poverty_linked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class SellerLink(Base):
    __tablename__ = "market_seller_link"
    __table_args__ = (UniqueConstraint("seller_id", "household_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("market_seller.id"), index=True)
    household_id: Mapped[int] = mapped_column(ForeignKey("household.id"), index=True)
    kind: Mapped[LinkKind] = mapped_column(db_enum(LinkKind, "seller_link_kind"))


class Certification(Base):
    """Append-only: a county officer certifies a seller as poverty-linked, or revokes it."""

    __tablename__ = "market_certification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("market_seller.id"), index=True)
    certified: Mapped[bool] = mapped_column(Boolean)  # False: revoked
    households: Mapped[int] = mapped_column(Integer)  # linked poor households at the time
    note: Mapped[str] = mapped_column(String(500), default="")
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Pavilion(Base):
    """A county's specialty pavilion (特色馆): its story and featured products."""

    __tablename__ = "market_pavilion"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("region.code"), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    story: Mapped[str] = mapped_column(Text, default="")
    featured: Mapped[list] = mapped_column(JSON, default=list)  # product ids, in order


class Product(Base):
    __tablename__ = "market_product"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("market_seller.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[Category] = mapped_column(db_enum(Category, "product_category"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Where it comes from (a county or a village): the pavilion it shows in.
    origin_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Sku(Base):
    __tablename__ = "market_sku"
    __table_args__ = (CheckConstraint("stock >= 0", name="stock_not_negative"),
                      CheckConstraint("price_fen > 0", name="price_positive"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("market_product.id"), index=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))  # "2.5 kg bag"
    unit: Mapped[str] = mapped_column(String(20))
    weight_g: Mapped[int] = mapped_column(Integer)
    price_fen: Mapped[int] = mapped_column(BigInteger)
    stock: Mapped[int] = mapped_column(Integer)  # free to sell (reservations already taken off)


class CartItem(Base):
    __tablename__ = "market_cart_item"
    __table_args__ = (UniqueConstraint("buyer", "sku_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    buyer: Mapped[str] = mapped_column(String(64), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("market_sku.id"))
    quantity: Mapped[int] = mapped_column(Integer)


class OrderState(StrEnum):
    PENDING_PAYMENT = "pending_payment"  # stock reserved until reserved_until
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    COMPLETED = "completed"  # sellers paid
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # never paid; its stock went back


class Order(Base):
    __tablename__ = "market_order"
    __table_args__ = (UniqueConstraint("buyer", "checkout_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    buyer: Mapped[str] = mapped_column(String(64), index=True)
    # The checkout's idempotency key: completing the same checkout twice finds this order.
    checkout_key: Mapped[str] = mapped_column(String(100))
    state: Mapped[OrderState] = mapped_column(db_enum(OrderState, "order_state"), index=True)
    items_fen: Mapped[int] = mapped_column(BigInteger)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    delivery_fee_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    refunded_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    ship_to_code: Mapped[str] = mapped_column(ForeignKey("region.code"))
    ship_to_address: Mapped[str] = mapped_column(String(300), default="")
    contact_name: Mapped[str] = mapped_column(String(100), default="")
    delivery_days: Mapped[int | None] = mapped_column(Integer, default=None)
    # Set when couriers reach only the township: the village station holds it for pickup.
    pickup_station_id: Mapped[int | None] = mapped_column(Integer, default=None)
    # An assisted purchase: the station keeper who placed it for a villager.
    assisted_by: Mapped[str | None] = mapped_column(String(64), default=None)
    campaign_id: Mapped[int | None] = mapped_column(Integer, default=None)
    reserved_until: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    shipped_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    business_date: Mapped[date | None] = mapped_column(Date, default=None)


class OrderLine(Base):
    __tablename__ = "market_order_line"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_order.id"), index=True)
    sku_id: Mapped[int] = mapped_column(ForeignKey("market_sku.id"), index=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("market_seller.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_fen: Mapped[int] = mapped_column(BigInteger)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_fen: Mapped[int] = mapped_column(BigInteger)  # quantity × price − discount
    refunded: Mapped[bool] = mapped_column(Boolean, default=False)
    # The registered poor households the goods came from (the seller's links).
    households: Mapped[list] = mapped_column(JSON, default=list)


class PaymentState(StrEnum):
    PENDING = "pending"
    CAPTURED = "captured"
    FAILED = "failed"
    REFUNDED = "refunded"  # captured for an order that was no longer waiting, sent back


class Payment(Base):
    __tablename__ = "market_payment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_order.id"), index=True)
    gateway: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str] = mapped_column(String(100), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[PaymentState] = mapped_column(db_enum(PaymentState, "payment_state"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    captured_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class PaymentCallback(Base):
    """Every callback received, accepted or not: the audit trail of the gateway."""

    __tablename__ = "market_payment_callback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(100), index=True, default=None)
    body: Mapped[str] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(40))  # captured, duplicate, forged, wrong_amount …
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Refund(Base):
    __tablename__ = "market_refund"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_order.id"), index=True)
    key: Mapped[str] = mapped_column(String(150), unique=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(300))
    lines: Mapped[list] = mapped_column(JSON, default=list)  # order line ids; [] = whole order
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # An outbox: the gateway is asked after the commit; until it confirms, this is empty
    # and `send_pending_refunds` asks again (the gateway takes the key once).
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)


class ReturnKind(StrEnum):
    NO_REASON = "no_reason"  # 七天无理由退货: within 7 days of receipt, goods unused
    QUALITY = "quality"  # spoiled, damaged or not as described


class ReturnState(StrEnum):
    REQUESTED = "requested"
    REFUNDED = "refunded"
    REFUSED = "refused"


class ReturnRequest(Base):
    """A buyer's return of some lines of a delivered or completed order, accepted (and
    refunded) or refused by a seller of the lines or an officer."""

    __tablename__ = "market_return"
    __table_args__ = (UniqueConstraint("order_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_order.id"), index=True)
    key: Mapped[str] = mapped_column(String(150))  # the buyer's idempotency key, per order
    lines: Mapped[list] = mapped_column(JSON)  # order line ids
    kind: Mapped[ReturnKind] = mapped_column(db_enum(ReturnKind, "return_kind"))
    reason: Mapped[str] = mapped_column(String(300))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[ReturnState] = mapped_column(db_enum(ReturnState, "return_state"), index=True)
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(64), default=None)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
    decision_note: Mapped[str] = mapped_column(String(300), default="")


class Shipment(Base):
    __tablename__ = "market_shipment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("market_order.id"), unique=True)
    carrier: Mapped[str] = mapped_column(String(100))
    tracking_number: Mapped[str] = mapped_column(String(100))
    shipped_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, default=None)
