"""Returns after delivery: the buyer asks, a seller of the goods (or an officer) accepts
and the money goes back, or refuses with a reason.

China's Consumer Rights Protection Law (art. 25) lets a buyer online return goods within
seven days of receiving them without giving a reason, except fresh and perishable goods
and services; a quality problem (spoiled, damaged, not as described) is a reason for any
goods.  So a return is asked for by lines of a delivered or completed order, within
``RETURN_DAYS`` days of the delivery (China dates), either ``no_reason`` — refused at
once for food, agricultural produce and tourism — or ``quality``.

Accepted, the lines' amounts go back through the gateway (the refund outbox of
``orders``).  From a completed order the sellers were paid: the money comes back from
each seller's account, and where the seller is a poor household the posting carries its
household and the industry channel, so that the household's attributed income goes down
by what it gave back.  From a delivered order not yet completed it comes out of the
payments in transit, as a refund does.  The delivery fee is not refunded: the goods were
delivered.  Returned goods are not put back on sale by themselves: the seller does that
in the catalogue when they are back and sound.  A station keeper's commission on an
assisted purchase is recomputed on the goods kept (``stations.on_lines_returned``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..ledger.models import AccountKind, Channel
from ..ledger.service import Leg, open_account, post
from ..people.access import Actor, audit
from ..people.models import Role
from ..regions.codes import scope_prefix
from .models import (
    Category,
    Order,
    OrderLine,
    OrderState,
    Product,
    Refund,
    ReturnKind,
    ReturnRequest,
    ReturnState,
    Seller,
    SellerKind,
    Sku,
)
from .orders import (
    BOOKS,
    IN_TRANSIT,
    OFFICERS,
    _captured_payment,
    _order,
    gateway_account,
    require_party,
    seller_account,
    send_pending_refunds,
)

RETURN_DAYS = 7
# Not returned without a reason: fresh and perishable produce, and services.
PERISHABLE_OR_SERVICE = frozenset({Category.FOOD, Category.AGRICULTURAL, Category.TOURISM})


def _china_date(at: datetime) -> date:
    """The date in China of a naive UTC time."""
    return (at + timedelta(hours=8)).date()


def last_day(delivered_at: datetime) -> date:
    """The last China date a return of goods delivered at ``delivered_at`` is asked on."""
    return _china_date(delivered_at) + timedelta(days=RETURN_DAYS)


def is_open(delivered_at: datetime, now: datetime) -> bool:
    return _china_date(now) <= last_day(delivered_at)


def return_view(r: ReturnRequest) -> dict:
    return {"id": r.id, "order_id": r.order_id, "key": r.key, "lines": r.lines,
            "kind": r.kind.value, "reason": r.reason, "amount_fen": r.amount_fen,
            "state": r.state.value, "requested_by": r.requested_by,
            "requested_at": r.requested_at.isoformat(timespec="seconds"),
            "decided_by": r.decided_by,
            "decided_at": r.decided_at.isoformat(timespec="seconds") if r.decided_at else None,
            "decision_note": r.decision_note}


def request_return(session_factory: Callable[[], Session], actor: Actor, order_id: int,
                   key: str, line_ids: list[int], kind: ReturnKind | str, reason: str,
                   now: datetime | None = None) -> dict:
    """The buyer (or the keeper who bought for a villager) asks to return some lines;
    idempotent by ``key``."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("say why", field="reason")
    try:
        kind = ReturnKind(kind)
    except ValueError:
        raise InvalidInput(f"kind must be one of {', '.join(k.value for k in ReturnKind)}, "
                           f"got {kind!r}", field="kind") from None
    wanted = sorted(set(line_ids or []))
    if not wanted:
        raise InvalidInput("name the lines to return", field="line_ids")
    with session_factory() as s, s.begin():
        order = _order(s, order_id, lock=True)
        require_party(s, actor, order, seller=False)
        done = s.scalar(select(ReturnRequest).where(ReturnRequest.order_id == order.id,
                                                    ReturnRequest.key == key))
        if done is not None:
            if sorted(done.lines) != wanted:
                raise Conflict(f"return key {key!r} was used for another return", field="key")
            return return_view(done)
        if order.state not in (OrderState.DELIVERED, OrderState.COMPLETED):
            raise Conflict(f"order {order_id} is {order.state.value}: only delivered goods are "
                           "returned (before that, cancel the order or ask for a refund)",
                           field="order_id")
        if not is_open(order.delivered_at, now or utcnow()):
            raise Conflict(f"order {order_id} was delivered on {_china_date(order.delivered_at)}: "
                           f"returns were open until {last_day(order.delivered_at)}",
                           field="order_id")
        rows = s.execute(select(OrderLine, Product.name, Product.category)
                         .join(Sku, Sku.id == OrderLine.sku_id)
                         .join(Product, Product.id == Sku.product_id)
                         .where(OrderLine.order_id == order.id, OrderLine.id.in_(wanted))).all()
        found = {line.id for line, _, _ in rows}
        if len(found) != len(wanted):
            raise InvalidInput("a line is not in this order", field="line_ids",
                               value=[i for i in wanted if i not in found])
        refunded = [line.id for line, _, _ in rows if line.refunded]
        if refunded:
            raise InvalidInput("a line was already refunded", field="line_ids", value=refunded)
        open_ = s.scalars(select(ReturnRequest).where(ReturnRequest.order_id == order.id,
                                                      ReturnRequest.state == ReturnState.REQUESTED))
        asked = sorted({i for r in open_ for i in r.lines} & found)
        if asked:
            raise Conflict("a line already has a return waiting for the seller",
                           field="line_ids", value=asked)
        if kind is ReturnKind.NO_REASON:
            for line, name, category in rows:
                if category in PERISHABLE_OR_SERVICE:
                    raise InvalidInput(
                        f"line {line.id} ({name}, {category.value}) is fresh or perishable "
                        "produce or a service: it is returned only for a quality problem "
                        "(kind quality)", field="kind", value=line.id)
        r = ReturnRequest(order_id=order.id, key=key, lines=wanted, kind=kind,
                          reason=reason.strip()[:300],
                          amount_fen=sum(line.amount_fen for line, _, _ in rows),
                          state=ReturnState.REQUESTED, requested_by=actor.username,
                          requested_at=now or utcnow())
        s.add(r)
        s.flush()
        audit(s, actor, "return_requested", "market_order", order.id,
              {"return": r.id, "kind": kind.value, "amount_fen": r.amount_fen})
        return return_view(r)


def _may_decide(s: Session, actor: Actor, order: Order, lines: list[OrderLine]) -> None:
    """An administrator, an officer whose region holds every seller of the lines, or the
    manager of every seller of the lines."""
    require_party(s, actor, order, buyer=False)
    if actor.role is Role.ADMINISTRATOR:
        return
    sellers = list(s.scalars(select(Seller).where(Seller.id.in_({x.seller_id for x in lines}))))
    if actor.role in OFFICERS and all(actor.may_reach(x.region_code) for x in sellers):
        return
    if any(x.manager_username != actor.username for x in sellers):
        raise PermissionDenied("the return takes back goods of a seller that is not yours: "
                               "the seller or an officer of its region decides it",
                               field="return_id")


def decide_return(session_factory: Callable[[], Session], actor: Actor, return_id: int,
                  accept: bool, note: str = "") -> dict:
    """Accept (the lines' amounts go back to the buyer) or refuse (a note says why) a
    return; the same decision again changes nothing."""
    note = (note or "").strip()
    if not accept and not note:
        raise InvalidInput("say why the return is refused", field="note")
    with session_factory() as s, s.begin():
        r = s.get(ReturnRequest, return_id)
        if r is None:
            raise NotFound(f"no return {return_id}", field="return_id")
        order = _order(s, r.order_id, lock=True)
        s.refresh(r)
        lines = s.scalars(select(OrderLine).where(OrderLine.id.in_(r.lines))
                          .order_by(OrderLine.id)).all()
        _may_decide(s, actor, order, lines)
        decided = ReturnState.REFUNDED if accept else ReturnState.REFUSED
        if r.state is not ReturnState.REQUESTED:
            if r.state is decided:
                return return_view(r)
            raise Conflict(f"return {return_id} is {r.state.value}", field="return_id")
        r.state, r.decided_by, r.decided_at, r.decision_note = (
            decided, actor.username, utcnow(), note[:300])
        if not accept:
            audit(s, actor, "return_refused", "market_order", order.id, {"return": r.id})
            return return_view(r)
        if any(x.refunded for x in lines):
            raise Conflict("a line of the return was refunded since", field="return_id")
        payment = _captured_payment(s, order)
        amount = sum(x.amount_fen for x in lines)
        legs = [Leg(gateway_account(payment.gateway), -amount)]
        if order.state is OrderState.COMPLETED:
            # The sellers were paid: each gives back its lines' amounts.
            per_seller: dict[int, int] = defaultdict(int)
            for x in lines:
                per_seller[x.seller_id] += x.amount_fen
            for seller in s.scalars(select(Seller).where(Seller.id.in_(per_seller))
                                    .order_by(Seller.id)):
                code = seller_account(seller)
                if seller.kind is SellerKind.HOUSEHOLD:
                    open_account(s, code, f"{seller.name}: sales", AccountKind.HOUSEHOLD,
                                 household_id=seller.household_id)
                    legs.append(Leg(code, per_seller[seller.id], seller.household_id,
                                    Channel.INDUSTRY))
                else:
                    open_account(s, code, f"{seller.name}: sales", AccountKind.SELLER,
                                 organisation_id=seller.organisation_id)
                    legs.append(Leg(code, per_seller[seller.id]))
        else:
            legs.append(Leg(IN_TRANSIT, amount))
        for x in lines:
            x.refunded = True
        order.refunded_fen += amount
        refund_key = f"return:{r.id}"
        s.add(Refund(order_id=order.id, key=refund_key, amount_fen=amount,
                     reason=f"return {r.id} ({r.kind.value}): {r.reason}"[:300],
                     lines=list(r.lines), created_by=actor.username))
        if amount:
            post(s, BOOKS, f"market:{refund_key}", utcnow().date(),
                 f"order {order.id}: return {r.id} refunded", legs)
        if order.state is OrderState.COMPLETED:
            # An assisted purchase: no commission on goods that went back.
            from ..stations.service import on_lines_returned
            on_lines_returned(s, order.id, r.id)
        audit(s, actor, "return_refunded", "market_order", order.id,
              {"return": r.id, "amount_fen": amount})
        view = return_view(r)
    # The money goes back through the gateway after the commit, never under a lock.
    send_pending_refunds(session_factory)
    return view


def list_returns(session: Session, actor: Actor, state: ReturnState | str | None = None,
                 order_id: int | None = None, limit: int = 500) -> list[dict]:
    """The returns the reader is a party to, newest first: as buyer (or the keeper who
    bought), as manager of a seller of the order, as an officer of a seller's region."""
    stmt = select(ReturnRequest).join(Order, Order.id == ReturnRequest.order_id)
    if state is not None:
        try:
            stmt = stmt.where(ReturnRequest.state == ReturnState(state))
        except ValueError:
            raise InvalidInput(f"state must be one of {', '.join(x.value for x in ReturnState)}",
                               field="state") from None
    if order_id is not None:
        stmt = stmt.where(ReturnRequest.order_id == order_id)
    if actor.role is not Role.ADMINISTRATOR:
        sellers = select(Seller.id).where(Seller.manager_username == actor.username)
        if actor.role in OFFICERS and actor.region_code:
            sellers = select(Seller.id).where(or_(
                Seller.manager_username == actor.username,
                Seller.region_code.startswith(scope_prefix(actor.region_code))))
        stmt = stmt.where(or_(
            Order.buyer == actor.username, Order.assisted_by == actor.username,
            Order.id.in_(select(OrderLine.order_id).where(OrderLine.seller_id.in_(sellers)))))
    rows = session.scalars(stmt.order_by(ReturnRequest.id.desc()).limit(limit))
    return [return_view(r) for r in rows]
