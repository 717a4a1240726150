"""Consumption poverty alleviation days and crowdfunding pre-sales (seed 000 §III.A.4).

**Campaign days.**  A campaign discounts the products whose ``origin_code`` lies in one of
its featured counties (optionally only from certified poverty-linked sellers) during its
window, by a percentage and/or a threshold discount (满减), and may limit the units of
each SKU one buyer takes over the campaign.  The marketplace's checkout calls
``discount_hook`` inside its transaction with the SKU rows already locked.  One campaign
per order: see ``discount_hook`` for which.

**Pre-sales.**  A seller creates a SKU for the pre-sale with stock = the most it can
deliver, then the pre-sale: target units, deadline, promised delivery date.  A pledge is
an ordinary checkout of that SKU (``pledge`` wraps it), paid through the gateway; the
money waits in payments in transit.  At the deadline ``close_presale`` keeps the paid
pledges (target met) or refunds every one of them in full (target missed).

Which orders are a pre-sale's pledges: *the orders with a line on its SKU created in
[opens_at, deadline)*, read from the marketplace's own tables rather than from a link
table of ours.  A link written after the checkout's commit could be missed by a crash in
between (an order paid but never refunded); a query cannot miss an order, whichever path
created it.  The hook keeps that set clean: while a pre-sale exists its SKU is sold only
alone in an order and only while the pre-sale is open, so a full refund never refunds
other goods and no order of the SKU falls outside the window.  The hook also locks the
pre-sale's row (after the SKU rows), and the close decides under the same lock, so no
pledge can commit after the close has counted.

Exactly once: the outcome is fixed in the pre-sale's row before any money moves; each
refund is keyed ``presale:{id}:refund:{order_id}`` (the marketplace's refund is
idempotent by key), and each settled pledge gets a ``campaign_presale_settlement`` row,
so a second run, or a run after a crash, does only what is left.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from types import SimpleNamespace

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import any_of, utcnow
from ..errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ..market import orders
from ..market.models import Order, OrderLine, OrderState, Product, Refund, Seller, Sku
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..refcache import MISSING, ReferenceCache
from ..regions.models import Level, Region
from .models import (
    Campaign,
    CampaignBuyer,
    Presale,
    PresaleSettlement,
    PresaleState,
    SettlementAction,
)

OFFICERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
BP = 10_000  # basis points in a whole
MAX_LIMIT = orders.MAX_QUANTITY * 100
MAX_FEN = 10**12  # ten billion yuan: far above any campaign, far below BIGINT
GONE = (OrderState.CANCELLED, OrderState.EXPIRED)
PAID = (OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED, OrderState.COMPLETED)
REFUNDABLE = (OrderState.PAID, OrderState.SHIPPED, OrderState.DELIVERED)


# --- input checks -------------------------------------------------------------------------

def _int(value: object, field: str, lo: int, hi: int | None = None) -> int:
    if type(value) is not int or value < lo or (hi is not None and value > hi):
        bound = f"{lo} to {hi}" if hi is not None else f"at least {lo}"
        raise InvalidInput(f"{field} must be a whole number {bound}, got {value!r}",
                           field=field, value=value)
    return value


def _moment(value: object, field: str) -> datetime:
    """A datetime as the database keeps it: naive UTC."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a date and time, got {value!r}", field=field)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _insert_ignore(session: Session, model, values: dict, keys: list[str]) -> None:
    """INSERT … ON CONFLICT DO NOTHING: a concurrent writer of the same row is no error."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:  # pragma: no cover - ECPA runs on the two above
        raise NotImplementedError(name)
    session.execute(insert(model).values(**values).on_conflict_do_nothing(index_elements=keys))


# --- campaign days ------------------------------------------------------------------------

def create_campaign(session: Session, actor: Actor, *, name: str, starts_at: datetime,
                    ends_at: datetime, counties: list[str], poverty_linked_only: bool = False,
                    percent_off_bp: int = 0, threshold_fen: int | None = None,
                    threshold_off_fen: int = 0, per_buyer_limit: int | None = None) -> Campaign:
    """A consumption poverty alleviation day.  ``percent_off_bp``: basis points off each
    campaign line (1500 = 15 %); ``threshold_off_fen`` off once the campaign lines reach
    ``threshold_fen`` at list price; ``per_buyer_limit``: units of each SKU per buyer."""
    require_role(actor, *OFFICERS)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidInput("a campaign needs a name of 1 to 200 characters", field="name")
    starts_at, ends_at = _moment(starts_at, "starts_at"), _moment(ends_at, "ends_at")
    if ends_at <= starts_at:
        raise InvalidInput("the campaign must end after it starts", field="ends_at")
    if not isinstance(counties, list) or not counties:
        raise InvalidInput("feature at least one county", field="counties")
    for i, code in enumerate(counties):
        region = session.get(Region, code) if isinstance(code, str) else None
        if region is None or region.level is not Level.COUNTY:
            raise InvalidInput(f"counties.{i}: {code!r} is not a county", field=f"counties.{i}",
                               value=code)
        require_region(actor, code)
    if len(set(counties)) != len(counties):
        raise InvalidInput("a county is featured twice", field="counties")
    _int(percent_off_bp, "percent_off_bp", 0, BP - 1)
    _int(threshold_off_fen, "threshold_off_fen", 0, MAX_FEN)
    if threshold_fen is None:
        if threshold_off_fen:
            raise InvalidInput("threshold_off_fen needs a threshold_fen", field="threshold_fen")
    else:
        _int(threshold_fen, "threshold_fen", 1, MAX_FEN)
        if not threshold_off_fen:
            raise InvalidInput("a threshold needs threshold_off_fen", field="threshold_off_fen")
        # Lines that reach the threshold must still cost something after both discounts.
        if threshold_off_fen * BP >= threshold_fen * (BP - percent_off_bp):
            raise InvalidInput("threshold_off_fen would make goods at the threshold free",
                               field="threshold_off_fen")
    if per_buyer_limit is not None:
        _int(per_buyer_limit, "per_buyer_limit", 1, MAX_LIMIT)
    if not isinstance(poverty_linked_only, bool):
        raise InvalidInput("poverty_linked_only must be true or false", field="poverty_linked_only")
    c = Campaign(name=name.strip(), starts_at=starts_at, ends_at=ends_at, counties=list(counties),
                 poverty_linked_only=poverty_linked_only, percent_off_bp=percent_off_bp,
                 threshold_fen=threshold_fen, threshold_off_fen=threshold_off_fen,
                 per_buyer_limit=per_buyer_limit, created_by=actor.username)
    session.add(c)
    session.flush()
    audit(session, actor, "create", "campaign", c.id)
    return c


def campaign_view(c: Campaign) -> dict:
    return {"id": c.id, "name": c.name, "starts_at": c.starts_at.isoformat(timespec="seconds"),
            "ends_at": c.ends_at.isoformat(timespec="seconds"), "counties": c.counties,
            "poverty_linked_only": c.poverty_linked_only, "percent_off_bp": c.percent_off_bp,
            "threshold_fen": c.threshold_fen, "threshold_off_fen": c.threshold_off_fen,
            "per_buyer_limit": c.per_buyer_limit, "created_by": c.created_by}


def list_campaigns(session: Session, actor: Actor, active_at: datetime | None = None) -> list[dict]:
    require_role(actor, *OFFICERS)
    q = select(Campaign).order_by(Campaign.starts_at, Campaign.id)
    if active_at is not None:
        at = _moment(active_at, "active_at")
        q = q.where(Campaign.starts_at <= at, Campaign.ends_at > at)
    return [campaign_view(c) for c in session.scalars(q)]


def spread(total: int, weights: list[int]) -> list[int]:
    """Split ``total`` fen in proportion to ``weights`` by the largest-remainder method:
    the parts add up to ``total`` exactly; ties go to the earlier line."""
    whole = sum(weights)
    if total == 0 or whole == 0:
        return [0] * len(weights)
    parts = [total * w // whole for w in weights]
    rest = [total * w % whole for w in weights]
    for i in sorted(range(len(weights)), key=lambda i: (-rest[i], i))[:total - sum(parts)]:
        parts[i] += 1
    return parts


def line_discounts(c: Campaign, amounts: list[int], covered: list[bool]) -> list[int]:
    """Each line's discount in fen.  The percentage is taken off each covered line
    (rounded down: never more than promised); the threshold discount is judged on the
    covered lines' list price and spread over them in proportion to what they still cost."""
    off = [a * c.percent_off_bp // BP if ok else 0 for a, ok in zip(amounts, covered)]
    listed = sum(a for a, ok in zip(amounts, covered) if ok)
    if c.threshold_fen is not None and c.threshold_off_fen and listed >= c.threshold_fen:
        left = [a - o if ok else 0 for a, o, ok in zip(amounts, off, covered)]
        extra = spread(min(c.threshold_off_fen, sum(left)), left)
        off = [o + x for o, x in zip(off, extra)]
    return off


def _covers(c: Campaign, product: Product, seller: Seller) -> bool:
    if c.poverty_linked_only and not seller.poverty_linked:
        return False
    return any(product.origin_code.startswith(code) for code in c.counties)


_campaigns = ReferenceCache("campaigns", Campaign)


def _all_campaigns(session: Session) -> list[SimpleNamespace]:
    """Every campaign as a read-only copy of its row (shared between requests; campaigns
    are a few a year): which are on is decided at each checkout's moment."""
    columns = Campaign.__table__.columns.keys()
    return [SimpleNamespace(**{k: getattr(c, k) for k in columns})
            for c in session.scalars(select(Campaign).order_by(Campaign.id))]


def discount_hook(session: Session, actor: Actor, pairs: list[tuple[Sku, int]],
                  now: datetime) -> tuple[list[int], int | None]:
    """The checkout's discount: one amount in fen per line, and the campaign applied.

    Which campaign, when several are active at ``now`` and cover a line of the order:
    the one that takes most off this order; on a tie the one created first (lowest id).
    One campaign per order; its per-buyer limit then applies, to the lines it covers.

    Called with the SKU rows locked (ascending id).  It then locks, in this order, the
    pre-sale row of a pre-sale SKU, and the (campaign, buyer) row when the campaign has a
    limit — nothing else locks the latter, so the lock order is fixed and no deadlock can
    form.  The buyer is the actor (the checkout's buyer unless ``buyer=`` says otherwise).
    """
    _presale_guard(session, pairs, now)
    none = ([0] * len(pairs), None)
    campaigns = active_campaigns(keep_campaigns(session), now)
    if not campaigns:
        return none
    products = {p.id: p for p in session.scalars(select(Product).where(
        Product.id.in_({sku.product_id for sku, _ in pairs})))}
    sellers = {x.id: x for x in session.scalars(select(Seller).where(
        Seller.id.in_({p.seller_id for p in products.values()})))}
    best = best_campaign(campaigns, [(sku.price_fen * qty, products[sku.product_id],
                                      sellers[products[sku.product_id].seller_id])
                                     for sku, qty in pairs])
    if best is None:
        return none
    c, off, covered = best
    if c.per_buyer_limit is not None:
        _enforce_limit(session, c, actor.username, [p for p, ok in zip(pairs, covered) if ok])
    return off, c.id


def active_campaigns(campaigns: list, now: datetime) -> list:
    return [c for c in campaigns if c.starts_at <= now < c.ends_at]


def keep_campaigns(session: Session) -> list:
    """Every campaign, read into the in-memory copy if it is not there."""
    return _campaigns.get(session, "all", lambda: _all_campaigns(session))


def cached_campaigns(url: str) -> list | None:
    """Every campaign as kept in memory, or None when they are not (the checkout's fast
    lane then takes the ordinary way, which loads them)."""
    found = _campaigns.peek(url, "all")
    return None if found is MISSING else found


def best_campaign(campaigns: list, lines: list[tuple[int, object, object]]
                  ) -> tuple[Campaign, list[int], list[bool]] | None:
    """Of the active ``campaigns``, the one that takes most off an order whose lines are
    (amount in fen, product, seller); on a tie the one created first.  Returns it with
    each line's discount and whether it covers the line, or None."""
    amounts = [amount for amount, _, _ in lines]
    best: tuple[Campaign, list[int], list[bool]] | None = None
    for c in campaigns:
        covered = [_covers(c, product, seller) for _, product, seller in lines]
        if not any(covered):
            continue
        off = line_discounts(c, amounts, covered)
        if best is None or sum(off) > sum(best[1]):
            best = (c, off, covered)
    return best


def _enforce_limit(session: Session, c: Campaign, buyer: str, pairs: list[tuple[Sku, int]]) -> None:
    # The buyer's own lock: a concurrent checkout by the same buyer waits here and then
    # counts this one's units (read committed: each statement sees what was committed).
    _insert_ignore(session, CampaignBuyer, {"campaign_id": c.id, "buyer": buyer},
                   ["campaign_id", "buyer"])
    session.execute(select(CampaignBuyer.id).where(CampaignBuyer.campaign_id == c.id,
                                                   CampaignBuyer.buyer == buyer)
                    .with_for_update()).one()
    had = dict(session.execute(
        select(OrderLine.sku_id, func.sum(OrderLine.quantity))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.campaign_id == c.id, Order.buyer == buyer, Order.state.not_in(GONE),
               OrderLine.refunded.is_(False), OrderLine.sku_id.in_([sku.id for sku, _ in pairs]))
        .group_by(OrderLine.sku_id)).all())
    for sku, qty in pairs:
        already = int(had.get(sku.id) or 0)
        if already + qty > c.per_buyer_limit:
            raise Conflict(f"SKU {sku.code}: at most {c.per_buyer_limit} per buyer in "
                           f"campaign {c.name!r}; you have {already}, asked {qty}",
                           field="items", sku_id=sku.id, limit=c.per_buyer_limit, already=already)


# --- pre-sales ----------------------------------------------------------------------------

@functools.cache
def _presales_of_skus(dialect: str):
    return (select(Presale.id).where(any_of(Presale.sku_id, "skus", dialect))
            .order_by(Presale.id).with_for_update())


def _presale_guard(session: Session, pairs: list[tuple[Sku, int]], now: datetime) -> None:
    """A pre-sale SKU is sold alone and only while its pre-sale is open (see the module
    docstring); its row is locked so that the close cannot count before this commits."""
    # Locked by id first (a plain statement: nearly every checkout finds none), then read.
    conn = session.connection()
    ids = conn.execute(_presales_of_skus(conn.dialect.name),
                       {"skus": [s.id for s, _ in pairs]}).scalars().all()
    if not ids:
        return
    presales = session.scalars(select(Presale).where(Presale.id.in_(ids)).order_by(Presale.id)).all()
    p = presales[0]
    if len(pairs) > 1:
        raise Conflict(f"pre-sale {p.id}'s SKU is pledged alone: check it out on its own",
                       field="items", presale_id=p.id)
    if p.state is not PresaleState.OPEN or not p.opens_at <= now < p.deadline:
        raise Conflict(f"pre-sale {p.id} takes pledges from {p.opens_at:%Y-%m-%d %H:%M} "
                       f"until {p.deadline:%Y-%m-%d %H:%M} UTC only (it is {p.state.value})",
                       field="items", presale_id=p.id)


def _presale(session: Session, presale_id: int, lock: bool = False) -> Presale:
    q = select(Presale).where(Presale.id == presale_id)
    p = session.scalar(q.with_for_update() if lock else q)
    if p is None:
        raise NotFound(f"no pre-sale {presale_id}", field="presale_id")
    return p


def _require_manager(session: Session, actor: Actor, seller: Seller) -> None:
    """The seller's manager, an administrator, or a county officer of its region."""
    if actor.username == seller.manager_username or actor.role is Role.ADMINISTRATOR:
        return
    if actor.role is Role.COUNTY_OFFICER and actor.may_reach(seller.region_code):
        return
    raise PermissionDenied(f"only the manager of seller {seller.name!r} or an officer of its "
                           "county may do this", field="sku_id")


def _seller_of_sku(session: Session, sku: Sku) -> Seller:
    product = session.get(Product, sku.product_id)
    return session.get(Seller, product.seller_id)


def create_presale(session: Session, actor: Actor, *, sku_id: int, target_units: int,
                   deadline: datetime, delivery_date: date, opens_at: datetime | None = None,
                   title: str | None = None, now: datetime | None = None) -> Presale:
    now = now or utcnow()
    sku = session.get(Sku, sku_id) if type(sku_id) is int and 0 < sku_id < 2**31 else None
    if sku is None:
        raise InvalidInput(f"no SKU {sku_id!r}", field="sku_id", value=sku_id)
    _require_manager(session, actor, _seller_of_sku(session, sku))
    _int(target_units, "target_units", 1)
    if target_units > sku.stock:
        raise InvalidInput(f"target_units {target_units} is more than the {sku.stock} the SKU "
                           "has in stock: the pre-sale could never succeed", field="target_units")
    opens_at = _moment(opens_at, "opens_at") if opens_at is not None else now
    deadline = _moment(deadline, "deadline")
    if deadline <= max(opens_at, now):
        raise InvalidInput("the deadline must be in the future and after opens_at", field="deadline")
    if not isinstance(delivery_date, date) or isinstance(delivery_date, datetime):
        raise InvalidInput(f"delivery_date must be a date, got {delivery_date!r}", field="delivery_date")
    if delivery_date < deadline.date():
        raise InvalidInput("delivery is promised for after the deadline", field="delivery_date")
    if title is not None and (not isinstance(title, str) or len(title) > 200):
        raise InvalidInput("title: at most 200 characters", field="title")
    if session.scalar(select(Presale.id).where(Presale.sku_id == sku.id)) is not None:
        raise Conflict(f"SKU {sku.code} already has a pre-sale: create a SKU for each",
                       field="sku_id")
    p = Presale(sku_id=sku.id, title=(title or "").strip() or sku.title, target_units=target_units,
                opens_at=opens_at, deadline=deadline, delivery_date=delivery_date,
                state=PresaleState.OPEN, created_by=actor.username)
    session.add(p)
    session.flush()
    audit(session, actor, "create", "campaign_presale", p.id)
    return p


def pledge(session_factory: Callable[[], Session], actor: Actor, presale_id: int, key: str,
           quantity: int, *, ship_to_code: str, address: str = "", contact_name: str = "",
           now: datetime | None = None) -> dict:
    """Pledge: a checkout of the pre-sale's SKU (then pay the order as any other).  The
    same key again returns the same order."""
    if not isinstance(key, str) or not 0 < len(key) <= 80:
        raise InvalidInput("a pledge key of 1 to 80 characters is required", field="key")
    _int(quantity, "quantity", 1, orders.MAX_QUANTITY)
    with session_factory() as s:
        p = _presale(s, presale_id)
        sku_id = p.sku_id
    # Keys of its own, so that a pledge never returns one of the buyer's other orders.
    order = orders.checkout(session_factory, actor, f"presale:{presale_id}:{key}",
                            [orders.Item(sku_id, quantity)], ship_to_code=ship_to_code,
                            address=address, contact_name=contact_name, now=now,
                            discount=discount_hook)
    return {**order, "presale_id": presale_id}


def _pledges(session: Session, p: Presale) -> dict[int, tuple[OrderState, int]]:
    """The pre-sale's orders: id → (state, units), in id order."""
    rows = session.execute(
        select(Order.id, Order.state, OrderLine.quantity)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .where(OrderLine.sku_id == p.sku_id, Order.created_at >= p.opens_at,
               Order.created_at < p.deadline)
        .order_by(Order.id)).all()
    out: dict[int, tuple[OrderState, int]] = {}
    for oid, state, qty in rows:
        out[oid] = (state, out.get(oid, (state, 0))[1] + qty)
    return out


def progress(session: Session, presale_id: int, now: datetime | None = None) -> dict:
    """Public: how far the pre-sale is — for the web page's progress bar."""
    now = now or utcnow()
    p = _presale(session, presale_id)
    sku = session.get(Sku, p.sku_id)
    product = session.get(Product, sku.product_id)
    pledges = _pledges(session, p)
    pledged = sum(q for st, q in pledges.values() if st not in GONE)
    paid = sum(q for st, q in pledges.values() if st in PAID)
    counted = paid if p.paid_units_at_close is None else p.paid_units_at_close
    settled: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for action, n, fen in session.execute(
            select(PresaleSettlement.action, func.count(), func.coalesce(func.sum(
                PresaleSettlement.refunded_fen), 0))
            .where(PresaleSettlement.presale_id == p.id).group_by(PresaleSettlement.action)):
        settled[action.value] = [n, int(fen)]
    return {
        "id": p.id, "title": p.title, "product": product.name, "sku_id": sku.id,
        "sku_code": sku.code, "price_fen": sku.price_fen, "state": p.state.value,
        "target_units": p.target_units, "pledged_units": pledged, "paid_units": paid,
        "paid_units_at_close": p.paid_units_at_close,
        # Share of the target reached (paid units, or those counted at the close).
        "share_bp": counted * BP // p.target_units,
        "percent": counted * 100 // p.target_units,
        "opens_at": p.opens_at.isoformat(timespec="seconds"),
        "deadline": p.deadline.isoformat(timespec="seconds"),
        "seconds_left": max(0, int((p.deadline - now).total_seconds())),
        "delivery_date": p.delivery_date.isoformat(),
        "closed_at": p.closed_at.isoformat(timespec="seconds") if p.closed_at else None,
        "settlement": {a.value: {"orders": settled[a.value][0], "refunded_fen": settled[a.value][1]}
                       for a in SettlementAction if a.value in settled},
    }


def refund_key(presale_id: int, order_id: int) -> str:
    return f"presale:{presale_id}:refund:{order_id}"


def close_presale(session_factory: Callable[[], Session], actor: Actor, presale_id: int,
                  now: datetime | None = None) -> dict:
    """At the deadline: target met → the paid pledges are kept (they ship when the
    harvest comes); missed → every paid pledge is refunded in full.  Either way the
    unpaid pledges are cancelled (stock back).  Safe to run again, also after a crash
    half-way: it finishes what is left and never refunds twice."""
    now = now or utcnow()
    with session_factory() as s, s.begin():
        p = _presale(s, presale_id, lock=True)
        _require_manager(s, actor, _seller_of_sku(s, s.get(Sku, p.sku_id)))
        if p.state is PresaleState.OPEN:
            if now < p.deadline:
                raise Conflict(f"pre-sale {p.id} closes at its deadline, "
                               f"{p.deadline.isoformat(timespec='seconds')} UTC", field="presale_id")
            # The outcome is fixed here, under the lock pledges take too, once.
            paid = sum(q for st, q in _pledges(s, p).values() if st in PAID)
            p.paid_units_at_close, p.closed_at, p.closed_by = paid, now, actor.username
            p.state = PresaleState.SUCCEEDED if paid >= p.target_units else PresaleState.REFUNDING
            audit(s, actor, "close", "campaign_presale", p.id,
                  {"paid_units": paid, "outcome": p.state.value})
        failed = p.state in (PresaleState.REFUNDING, PresaleState.FAILED)
        reason = (f"pre-sale {p.id} missed its target: {p.paid_units_at_close} of "
                  f"{p.target_units} units by {p.deadline:%Y-%m-%d}")
        done = set(s.scalars(select(PresaleSettlement.order_id)
                             .where(PresaleSettlement.presale_id == p.id)))
        todo = [oid for oid in _pledges(s, p) if oid not in done]
    for oid in todo:
        action, fen = _settle(session_factory, actor, presale_id, oid, failed, reason)
        with session_factory() as s, s.begin():
            _insert_ignore(s, PresaleSettlement, {"presale_id": presale_id, "order_id": oid,
                                                  "action": action.value, "refunded_fen": fen,
                                                  "at": utcnow()}, ["presale_id", "order_id"])
    with session_factory() as s, s.begin():
        p = _presale(s, presale_id, lock=True)
        if p.state is PresaleState.REFUNDING:
            p.state = PresaleState.FAILED
        if p.settled_at is None:
            p.settled_at = utcnow()
        return progress(s, presale_id, now)


def _settle(session_factory: Callable[[], Session], actor: Actor, presale_id: int, order_id: int,
            failed: bool, reason: str) -> tuple[SettlementAction, int]:
    """Settle one pledge; each step is idempotent, so a repeat after a crash is safe."""
    key = refund_key(presale_id, order_id)

    def refunded() -> int | None:
        with session_factory() as s:
            return s.scalar(select(Refund.amount_fen).where(Refund.key == key))

    with session_factory() as s, s.begin():
        order = s.scalar(select(Order).where(Order.id == order_id).with_for_update())
        state = order.state
        if state is OrderState.EXPIRED:
            # Its stock is already back; cancelled, a late payment goes straight back
            # instead of reviving the order after the close.
            order.state, order.cancelled_at = OrderState.CANCELLED, utcnow()
            return SettlementAction.CANCELLED, 0
    if state is OrderState.PENDING_PAYMENT:
        # If the payment lands in between, cancel refunds it (key cancel:{id}), once.
        view = orders.cancel(session_factory, actor, order_id, reason="the pre-sale closed unpaid")
        return ((SettlementAction.REFUNDED, view["refunded_fen"]) if view["refunded_fen"]
                else (SettlementAction.CANCELLED, 0))
    if state is OrderState.CANCELLED:
        fen = refunded()
        return (SettlementAction.REFUNDED, fen) if fen is not None else (SettlementAction.CANCELLED, 0)
    if not failed:
        return SettlementAction.KEPT, 0
    if state is OrderState.COMPLETED:
        return SettlementAction.NOT_REFUNDABLE, 0  # the sellers were paid before the close
    try:
        orders.refund(session_factory, actor, order_id, key, None, reason)
    except Conflict:
        # A concurrent close refunded it first (or the buyer cancelled it).
        if refunded() is None:
            with session_factory() as s:
                if s.get(Order, order_id).state is not OrderState.CANCELLED:
                    raise
            return SettlementAction.CANCELLED, 0
    return SettlementAction.REFUNDED, refunded() or 0


def presale_view(p: Presale) -> dict:
    return {"id": p.id, "sku_id": p.sku_id, "title": p.title, "target_units": p.target_units,
            "opens_at": p.opens_at.isoformat(timespec="seconds"),
            "deadline": p.deadline.isoformat(timespec="seconds"),
            "delivery_date": p.delivery_date.isoformat(), "state": p.state.value}
