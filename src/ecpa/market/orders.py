"""Cart → order → payment → shipment → delivery → completion; cancellation and refunds.

Never oversell: a checkout locks the SKU rows it takes from, always in ascending id order
(so that two checkouts can never wait on each other in a cycle), takes the stock and
commits; the database also refuses a negative stock.  Whatever else locks rows locks
payment → order → SKUs, in that order.  No gateway is called while a lock is held: the
payment row is committed first, then the gateway is asked.

The same checkout (buyer, key) completed twice returns the same order.  Every movement
of money is posted to the ledger: the payment into payments in transit, refunds back to
the gateway, and at completion each seller's share — to the household's own account,
with the industry channel, when the seller is a poor household.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db import any_of, utcnow
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..ledger.models import AccountKind, Channel
from ..ledger.service import Leg, open_account, post
from ..people.access import Actor, audit, system_actor
from ..people.models import Role
from .catalog import poor_households_of
from .models import (
    CartItem,
    Order,
    OrderLine,
    OrderState,
    PaymentState,
    Product,
    Refund,
    Seller,
    SellerKind,
    Shipment,
    Sku,
)

RESERVATION = timedelta(minutes=15)  # an unpaid order gives its stock back after this
MAX_QUANTITY = 999
IN_TRANSIT = "market:in-transit"
DELIVERY_FEES = "market:delivery-fees"
OFFICERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
# The marketplace keeps its own books: who may ask is checked here, and the ledger
# records the marketplace as the poster (the audit log names the person).
BOOKS = system_actor("market")


def gateway_account(gateway: str) -> str:
    return f"gateway:{gateway}:clearing"


def seller_account(seller: Seller) -> str:
    if seller.kind is SellerKind.HOUSEHOLD:
        return f"hh:{seller.household_id}:market:{seller.id}"
    return f"seller:{seller.id}"


@dataclass(frozen=True)
class Item:
    sku_id: int
    quantity: int


@dataclass(frozen=True)
class DeliveryQuote:
    fee_fen: int
    days: int | None
    pickup_station_id: int | None
    zone: str


# Pricing hooks: campaigns add a discount per line; stations quote the delivery.
DiscountHook = Callable[[Session, Actor, list[tuple[Sku, int]], datetime], tuple[list[int], int | None]]


def _quote(session: Session, ship_to_code: str, weight_g: int) -> DeliveryQuote:
    from ..stations.service import quote_delivery
    q = quote_delivery(session, ship_to_code, weight_g)
    return DeliveryQuote(q.fee_fen, q.days, q.pickup_station_id, q.zone)


def _items(raw: list[Item]) -> list[Item]:
    merged: dict[int, int] = defaultdict(int)
    for i, item in enumerate(raw):
        if type(item.quantity) is not int or not 0 < item.quantity <= MAX_QUANTITY:
            raise InvalidInput(f"item {i}: quantity must be 1 to {MAX_QUANTITY}, got {item.quantity!r}",
                               field=f"items.{i}.quantity")
        merged[item.sku_id] += item.quantity
    if not merged:
        raise InvalidInput("the cart is empty", field="items")
    return [Item(k, v) for k, v in sorted(merged.items())]


def _existing(session: Session, buyer: str, key: str) -> Order | None:
    return session.scalar(select(Order).where(Order.buyer == buyer, Order.checkout_key == key))


def checkout(session_factory: Callable[[], Session], actor: Actor, key: str,
             items: list[Item] | None = None, *, ship_to_code: str, address: str = "",
             contact_name: str = "", now: datetime | None = None,
             discount: DiscountHook | None = None, assisted_by: str | None = None,
             buyer: str | None = None) -> dict:
    """Turn the items (or the buyer's cart) into an order with the stock reserved."""
    if not key or len(key) > 100:
        raise InvalidInput("a checkout key of 1 to 100 characters is required", field="key")
    buyer = buyer or actor.username
    now = now or utcnow()
    for attempt in (1, 2):
        try:
            with session_factory() as s, s.begin():
                view = _reserve(s, actor, buyer, key, items, ship_to_code, address,
                                contact_name, now, discount, assisted_by,
                                may_release=attempt == 1)
                if view is not None:
                    return view
        except IntegrityError:
            # The same checkout completed concurrently (the order's unique key): its
            # order is the answer.
            with session_factory() as s:
                found = _existing(s, buyer, key)
                if found is not None:
                    return order_view(s, found)
            raise
        # Short of stock while some reservations have expired: give them back, try again.
        release_expired(session_factory, now)
    raise AssertionError("unreachable")


_SKU = Sku.__table__
_ORDER = Order.__table__
_LINE = OrderLine.__table__


@functools.cache
def _statements(dialect: str) -> SimpleNamespace:
    """The checkout's statements, built once per database kind: building and keying a
    statement afresh for every checkout cost more than running it."""
    ids = functools.partial(any_of, name="ids", dialect=dialect)
    if dialect == "postgresql":
        # Every line's stock taken in one statement (the rows are locked already).
        take = text("UPDATE market_sku AS s SET stock = s.stock - t.taken "
                    "FROM unnest(CAST(:skus AS integer[]), CAST(:taken AS integer[])) AS t(id, taken) "
                    "WHERE s.id = t.id")
    else:
        take = update(_SKU).where(_SKU.c.id == bindparam("sku")).values(
            stock=_SKU.c.stock - bindparam("qty"))
    return SimpleNamespace(
        cart=select(CartItem.sku_id, CartItem.quantity).where(CartItem.buyer == bindparam("buyer")),
        info=select(Sku.id, Sku.weight_g, Product.name, Product.active, Product.seller_id)
        .join(Product, Product.id == Sku.product_id).where(ids(Sku.id)),
        lock=select(Sku.id, Sku.code, Sku.stock, Sku.price_fen, Sku.product_id)
        .where(ids(Sku.id)).order_by(Sku.id).with_for_update(),
        take=take,
        order=insert(_ORDER).returning(_ORDER.c.id),
        lines=insert(_LINE).returning(_LINE.c.id, sort_by_parameter_order=True),
        empty_cart=delete(CartItem.__table__).where(CartItem.buyer == bindparam("buyer")),
    )


def _reserve(s: Session, actor: Actor, buyer: str, key: str, items: list[Item] | None,
             ship_to_code: str, address: str, contact_name: str, now: datetime,
             discount: DiscountHook | None, assisted_by: str | None,
             may_release: bool) -> dict | None:
    """The hot path of a sale: plain statements, no ORM objects, few round trips.

    A repeat of a finished checkout is not looked for up front (it is rare): the order's
    unique (buyer, key) refuses it, or, from an emptied cart or short of stock, the
    existing order is looked for before saying no."""
    # Core statements on the session's connection: the ORM layer is not needed here.
    conn = s.connection()
    sql = _statements(conn.dialect.name)
    from_cart = items is None
    if from_cart:
        items = [Item(sku_id, qty) for sku_id, qty in conn.execute(sql.cart, {"buyer": buyer})]
        if not items:
            found = _existing(s, buyer, key)
            if found is not None:
                return order_view(s, found)
    wanted = _items(items)
    # What need not be locked is read first, so that the SKU rows stay locked for as few
    # round trips as possible: products, sellers, their poor households, the delivery.
    ids = [i.sku_id for i in wanted]
    info = {row.id: row for row in conn.execute(sql.info, {"ids": ids})}
    for i, item in enumerate(wanted):
        if item.sku_id not in info:
            raise InvalidInput(f"no SKU {item.sku_id}", field=f"items.{i}.sku_id")
    inactive = [row.name for row in info.values() if not row.active]
    if inactive:
        raise Conflict(f"product {inactive[0]!r} is no longer sold", field="items")
    poor = poor_households_of(s, sorted({row.seller_id for row in info.values()}))
    quote = _quote(s, ship_to_code, sum(info[i.sku_id].weight_g * i.quantity for i in wanted))
    # The lock: SKU rows in ascending id order.
    by_id = {row.id: row for row in conn.execute(sql.lock, {"ids": ids})}
    short = [(by_id[i.sku_id], i.quantity) for i in wanted if by_id[i.sku_id].stock < i.quantity]
    if short:
        found = _existing(s, buyer, key)
        if found is not None:  # this checkout was done before and took the stock itself
            return order_view(s, found)
        if may_release and _has_expired(s, now):
            return None
        sku, qty = short[0]
        raise Conflict(f"SKU {sku.code} has {sku.stock} left, {qty} asked", field="items",
                       sku_id=sku.id, available=sku.stock)
    pairs = [(by_id[i.sku_id], i.quantity) for i in wanted]
    line_discounts, campaign_id = discount(s, actor, pairs, now) if discount else ([0] * len(pairs), None)
    if conn.dialect.name == "postgresql":
        conn.execute(sql.take, {"skus": [sku.id for sku, _ in pairs], "taken": [q for _, q in pairs]})
    else:
        conn.execute(sql.take, [{"sku": sku.id, "qty": q} for sku, q in pairs])
    items_fen = sum(sku.price_fen * qty for sku, qty in pairs)
    discount_fen = sum(line_discounts)
    order = {"buyer": buyer, "checkout_key": key, "state": OrderState.PENDING_PAYMENT,
             "items_fen": items_fen, "discount_fen": discount_fen,
             "delivery_fee_fen": quote.fee_fen, "total_fen": items_fen - discount_fen + quote.fee_fen,
             "refunded_fen": 0, "ship_to_code": ship_to_code, "ship_to_address": address,
             "contact_name": contact_name, "delivery_days": quote.days,
             "pickup_station_id": quote.pickup_station_id, "assisted_by": assisted_by,
             "campaign_id": campaign_id, "reserved_until": now + RESERVATION, "created_at": now}
    order_id = conn.execute(sql.order, order).scalar_one()
    lines = [{"order_id": order_id, "sku_id": sku.id, "seller_id": info[sku.id].seller_id,
              "quantity": qty, "unit_price_fen": sku.price_fen, "discount_fen": off,
              "amount_fen": sku.price_fen * qty - off, "refunded": False,
              "households": poor.get(info[sku.id].seller_id, [])}
             for (sku, qty), off in zip(pairs, line_discounts)]
    line_ids = conn.execute(sql.lines, lines).scalars().all()
    if from_cart:
        conn.execute(sql.empty_cart, {"buyer": buyer})
    return _view(order_id, order, [{"id": line_id, **line} for line_id, line in zip(line_ids, lines)])


def _has_expired(s: Session, now: datetime) -> bool:
    return s.scalar(select(Order.id).where(Order.state == OrderState.PENDING_PAYMENT,
                                           Order.reserved_until < now).limit(1)) is not None


def _give_back(s: Session, order: Order) -> None:
    """Return an order's unrefunded stock (SKU rows locked in id order)."""
    lines = s.scalars(select(OrderLine).where(OrderLine.order_id == order.id,
                                              OrderLine.refunded.is_(False))).all()
    _restock(s, lines)


def _restock(s: Session, lines: list[OrderLine]) -> None:
    qty: dict[int, int] = defaultdict(int)
    for line in lines:
        qty[line.sku_id] += line.quantity
    for sku in s.scalars(select(Sku).where(Sku.id.in_(list(qty))).order_by(Sku.id).with_for_update()):
        sku.stock += qty[sku.id]


def release_expired(session_factory: Callable[[], Session], now: datetime | None = None,
                    limit: int = 500) -> int:
    """Give back the stock of unpaid orders whose reservation has run out."""
    now = now or utcnow()
    with session_factory() as s, s.begin():
        orders = s.scalars(select(Order).where(Order.state == OrderState.PENDING_PAYMENT,
                                               Order.reserved_until < now)
                           .order_by(Order.id).limit(limit)
                           .with_for_update(skip_locked=True)).all()
        lines = s.scalars(select(OrderLine).where(OrderLine.order_id.in_([o.id for o in orders]))).all()
        _restock(s, lines)
        for o in orders:
            o.state = OrderState.EXPIRED
        return len(orders)


def _order(s: Session, order_id: int, lock: bool = False) -> Order:
    q = select(Order).where(Order.id == order_id)
    order = s.scalar(q.with_for_update() if lock else q)
    if order is None:
        raise NotFound(f"no order {order_id}", field="order_id")
    return order


def _sellers_of(s: Session, order: Order) -> list[Seller]:
    ids = set(s.scalars(select(OrderLine.seller_id).where(OrderLine.order_id == order.id)))
    return list(s.scalars(select(Seller).where(Seller.id.in_(ids))))


def require_party(s: Session, actor: Actor, order: Order, *, buyer: bool = True,
                  seller: bool = True) -> None:
    """The buyer, the keeper who placed it, a seller of its goods, or an officer."""
    if actor.role is Role.ADMINISTRATOR:
        return
    if buyer and actor.username in (order.buyer, order.assisted_by):
        return
    if seller and any(x.manager_username == actor.username for x in _sellers_of(s, order)):
        return
    if actor.role is Role.COUNTY_OFFICER and seller and any(
            actor.may_reach(x.region_code) for x in _sellers_of(s, order)):
        return
    raise PermissionDenied(f"order {order.id} is not yours", field="order_id")


def cancel(session_factory: Callable[[], Session], actor: Actor, order_id: int,
           reason: str = "cancelled by the buyer") -> dict:
    """Cancel an unpaid order (stock back) or a paid one not yet shipped (stock back and
    a full refund)."""
    with session_factory() as s, s.begin():
        order = _order(s, order_id, lock=True)
        require_party(s, actor, order)
        if order.state in (OrderState.CANCELLED, OrderState.EXPIRED):
            return order_view(s, order)
        if order.state is OrderState.PENDING_PAYMENT:
            _give_back(s, order)
            order.state, order.cancelled_at = OrderState.CANCELLED, utcnow()
            return order_view(s, order)
        if order.state is not OrderState.PAID:
            raise Conflict(f"order {order_id} is {order.state.value}; ask for a refund of its lines",
                           field="order_id")
    return refund(session_factory, actor, order_id, f"cancel:{order_id}", None, reason,
                  only_paid=True)


def refund(session_factory: Callable[[], Session], actor: Actor, order_id: int, key: str,
           line_ids: list[int] | None, reason: str, *, only_paid: bool = False) -> dict:
    """Refund some lines (their amounts) or, with no lines, what is left of the order
    (the delivery fee included).  Idempotent by ``key``; unshipped goods go back to
    stock.  Delivered goods coming back are a return (``returns``)."""
    if not reason.strip():
        raise InvalidInput("say why", field="reason")
    if key.startswith(("return:", "late:")):
        # The marketplace's own refunds (of returns, of late payments) are keyed so.
        raise InvalidInput(f"a refund key may not start with {key.split(':')[0]}:", field="key")
    if line_ids is not None and not line_ids:
        raise InvalidInput("name the lines to refund, or none for the whole order", field="line_ids")
    with session_factory() as s, s.begin():
        order = _order(s, order_id, lock=True)
        require_party(s, actor, order)
        done = s.scalar(select(Refund).where(Refund.key == key))
        if done is not None:
            if done.order_id != order_id:
                raise Conflict(f"refund key {key!r} was used for another order", field="key")
            return order_view(s, order)
        allowed = (OrderState.PAID,) if only_paid else (
            OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED)
        if order.state not in allowed:
            raise Conflict(f"order {order_id} is {order.state.value}: nothing to refund"
                           + (" by cancelling" if only_paid else ""), field="order_id")
        if order.state is not OrderState.PAID:
            # Goods on their way or delivered: the seller or an officer agrees to refund.
            require_party(s, actor, order, buyer=False)
        payment = _captured_payment(s, order)
        open_lines = s.scalars(select(OrderLine).where(OrderLine.order_id == order.id,
                                                       OrderLine.refunded.is_(False))
                               .order_by(OrderLine.id)).all()
        if line_ids:
            chosen = [x for x in open_lines if x.id in set(line_ids)]
            if len(chosen) != len(set(line_ids)):
                raise InvalidInput("a line is not in this order or was already refunded",
                                   field="line_ids", value=sorted(set(line_ids) - {x.id for x in chosen}))
        else:
            chosen = open_lines
        from .models import ReturnRequest, ReturnState
        waiting = sorted({i for r in s.scalars(select(ReturnRequest).where(
            ReturnRequest.order_id == order.id, ReturnRequest.state == ReturnState.REQUESTED))
            for i in r.lines} & {x.id for x in chosen})
        if waiting:
            raise Conflict("a line has a return waiting for the seller: decide the return",
                           field="line_ids", value=waiting)
        everything = len(chosen) == len(open_lines)
        amount = sum(x.amount_fen for x in chosen) + (order.delivery_fee_fen if everything else 0)
        for x in chosen:
            x.refunded = True
        if order.state is OrderState.PAID:
            _restock(s, chosen)
        order.refunded_fen += amount
        if everything:
            order.state, order.cancelled_at = OrderState.CANCELLED, utcnow()
        s.add(Refund(order_id=order.id, key=key, amount_fen=amount, reason=reason,
                     lines=[x.id for x in chosen] if line_ids else [], created_by=actor.username))
        if amount:
            post(s, BOOKS, f"market:refund:{key}", utcnow().date(), f"order {order.id}: refund",
                 [Leg(IN_TRANSIT, amount), Leg(gateway_account(payment.gateway), -amount)])
        audit(s, actor, "refund", "market_order", order.id, {"amount_fen": amount})
        view = order_view(s, order)
    # The money goes back through the gateway after the commit, never under a lock.
    send_pending_refunds(session_factory)
    return view


def send_pending_refunds(session_factory: Callable[[], Session], limit: int = 100) -> int:
    """Ask the gateway for every refund recorded but not yet sent (after a crash between
    the commit and the gateway call, the next run sends it; the gateway takes each key
    once).  Run after each refund and by a timer."""
    from .models import Payment
    from .payments import gateway_named
    with session_factory() as s:
        # A refund goes back through the order's captured payment; a late payment's
        # refund ("late:<reference>") through that payment itself.
        pending = s.execute(select(Refund.id, Refund.key, Refund.amount_fen, Payment.gateway,
                                   Payment.reference)
                            .join(Payment, (Payment.order_id == Refund.order_id)
                                  & (((Payment.state == PaymentState.CAPTURED)
                                      & ~Refund.key.startswith("late:"))
                                     | ((Payment.state == PaymentState.REFUNDED)
                                        & (Refund.key == "late:" + Payment.reference))))
                            .where(Refund.sent_at.is_(None), Refund.amount_fen > 0)
                            .order_by(Refund.id).limit(limit)).all()
    for rid, key, amount, gateway, reference in pending:
        gateway_named(gateway).refund(reference, amount, key)
        with session_factory() as s, s.begin():
            s.get(Refund, rid).sent_at = utcnow()
    return len(pending)


def _captured_payment(s: Session, order: Order):
    from .models import Payment, PaymentState
    payment = s.scalar(select(Payment).where(Payment.order_id == order.id,
                                             Payment.state == PaymentState.CAPTURED))
    if payment is None:
        raise Conflict(f"order {order.id} has no captured payment", field="order_id")
    return payment


def ship(session_factory: Callable[[], Session], actor: Actor, order_id: int, carrier: str,
         tracking_number: str) -> dict:
    with session_factory() as s, s.begin():
        order = _order(s, order_id, lock=True)
        require_party(s, actor, order, buyer=False)
        if order.state is OrderState.SHIPPED:
            return order_view(s, order)
        if order.state is not OrderState.PAID:
            raise Conflict(f"order {order_id} is {order.state.value}, not paid", field="order_id")
        if not carrier.strip() or not tracking_number.strip():
            raise InvalidInput("carrier and tracking number are required", field="tracking_number")
        s.add(Shipment(order_id=order.id, carrier=carrier, tracking_number=tracking_number))
        order.state, order.shipped_at = OrderState.SHIPPED, utcnow()
        return order_view(s, order)


def mark_delivered(session_factory: Callable[[], Session], actor: Actor, order_id: int) -> dict:
    with session_factory() as s, s.begin():
        order = _order(s, order_id, lock=True)
        require_party(s, actor, order)
        if order.state in (OrderState.DELIVERED, OrderState.COMPLETED):
            return order_view(s, order)
        if order.state is not OrderState.SHIPPED:
            raise Conflict(f"order {order_id} is {order.state.value}, not shipped", field="order_id")
        order.state, order.delivered_at = OrderState.DELIVERED, utcnow()
        shipment = s.scalar(select(Shipment).where(Shipment.order_id == order.id))
        shipment.delivered_at = order.delivered_at
        return order_view(s, order)


def complete(session_factory: Callable[[], Session], actor: Actor, order_id: int) -> dict:
    """The buyer confirms receipt (or an officer closes a delivered order): the money in
    transit goes to the sellers and the delivery fee to logistics."""
    with session_factory() as s, s.begin():
        order = _order(s, order_id, lock=True)
        require_party(s, actor, order, seller=False)
        if order.state is OrderState.COMPLETED:
            return order_view(s, order)
        if order.state is OrderState.SHIPPED:
            order.delivered_at = utcnow()  # receipt confirmed before the courier said so
        elif order.state is not OrderState.DELIVERED:
            raise Conflict(f"order {order_id} is {order.state.value}, not delivered", field="order_id")
        lines = s.scalars(select(OrderLine).where(OrderLine.order_id == order.id,
                                                  OrderLine.refunded.is_(False))).all()
        sellers = {x.id: x for x in _sellers_of(s, order)}
        per_seller: dict[int, int] = defaultdict(int)
        for line in lines:
            per_seller[line.seller_id] += line.amount_fen
        legs = [Leg(IN_TRANSIT, order.total_fen - order.refunded_fen)]
        for sid, amount in sorted(per_seller.items()):
            seller = sellers[sid]
            code = seller_account(seller)
            if seller.kind is SellerKind.HOUSEHOLD:
                open_account(s, code, f"{seller.name}: sales", AccountKind.HOUSEHOLD,
                             household_id=seller.household_id)
                legs.append(Leg(code, -amount, seller.household_id, Channel.INDUSTRY))
            else:
                open_account(s, code, f"{seller.name}: sales", AccountKind.SELLER,
                             organisation_id=seller.organisation_id)
                legs.append(Leg(code, -amount))
        if order.delivery_fee_fen:
            legs.append(Leg(DELIVERY_FEES, -order.delivery_fee_fen))
        legs = [x for x in legs if x.amount_fen]
        if legs:
            post(s, BOOKS, f"market:order:{order.id}:complete", utcnow().date(),
                 f"order {order.id}: sellers paid", legs)
        order.state, order.completed_at = OrderState.COMPLETED, utcnow()
        # An assisted purchase: the station keeper's commission, in the same transaction.
        from ..stations.service import on_order_completed
        on_order_completed(s, order.id)
        return order_view(s, order)


def order_view(s: Session, order: Order) -> dict:
    lines = s.execute(select(*_LINE.c).where(_LINE.c.order_id == order.id)
                      .order_by(_LINE.c.id)).mappings().all()
    return _view(order.id, {c.key: getattr(order, c.key) for c in _ORDER.c if c.key != "id"}, lines)


def _view(order_id: int, order: dict, lines) -> dict:
    """An order as the API shows it, from its row and its lines' rows."""
    return {"id": order_id, "buyer": order["buyer"], "checkout_key": order["checkout_key"],
            "state": OrderState(order["state"]).value, "items_fen": order["items_fen"],
            "discount_fen": order["discount_fen"], "delivery_fee_fen": order["delivery_fee_fen"],
            "total_fen": order["total_fen"], "refunded_fen": order["refunded_fen"],
            "ship_to_code": order["ship_to_code"], "delivery_days": order["delivery_days"],
            "pickup_station_id": order["pickup_station_id"], "assisted_by": order["assisted_by"],
            "campaign_id": order["campaign_id"],
            "reserved_until": order["reserved_until"].isoformat(timespec="seconds"),
            "lines": [{"id": x["id"], "sku_id": x["sku_id"], "seller_id": x["seller_id"],
                       "quantity": x["quantity"], "unit_price_fen": x["unit_price_fen"],
                       "discount_fen": x["discount_fen"], "amount_fen": x["amount_fen"],
                       "refunded": x["refunded"], "households": x["households"]} for x in lines]}


def show(session: Session, actor: Actor, order_id: int) -> dict:
    order = _order(session, order_id)
    require_party(session, actor, order)
    return order_view(session, order)


def set_cart(session: Session, actor: Actor, sku_id: int, quantity: int) -> list[dict]:
    """Put a quantity of a SKU in the cart (0 takes it out); the cart reserves nothing."""
    if session.get(Sku, sku_id) is None:
        raise InvalidInput(f"no SKU {sku_id}", field="sku_id")
    if type(quantity) is not int or not 0 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"quantity must be 0 to {MAX_QUANTITY}", field="quantity")
    row = session.scalar(select(CartItem).where(CartItem.buyer == actor.username,
                                                CartItem.sku_id == sku_id))
    if quantity == 0:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(CartItem(buyer=actor.username, sku_id=sku_id, quantity=quantity))
    else:
        row.quantity = quantity
    session.flush()
    return cart(session, actor)


def cart(session: Session, actor: Actor) -> list[dict]:
    rows = session.execute(select(CartItem, Sku).join(Sku, Sku.id == CartItem.sku_id)
                           .where(CartItem.buyer == actor.username).order_by(Sku.id)).all()
    return [{"sku_id": sku.id, "code": sku.code, "title": sku.title, "quantity": c.quantity,
             "price_fen": sku.price_fen, "amount_fen": sku.price_fen * c.quantity,
             "in_stock": sku.stock} for c, sku in rows]
