"""The station keeper's pages (seed 001 Table I, Ganjie model: industrial goods down to the
villages): the station and the villagers it serves, an assisted purchase for a villager
household — pick the household, products and quantities, check the quote, confirm — and
the order with the keeper's commission; consignments taken in and sold.

How an assisted order is paid: the villager pays the keeper in cash, and the keeper pays
the order online through the payment gateway with that cash, as a consumer would (the
gateway's own page flow: start the payment, pay on the gateway's page, the gateway's
signed callback captures it).  The ledger therefore sees what really happened: money
arriving through the gateway's clearing account into payments in transit, and on
completion the sellers paid and the station's commission posted — no money is invented
by the page."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from ..api.deps import SessionDep
from ..db import session_factory
from ..errors import InvalidInput, NotFound, PermissionDenied
from ..market import orders, payments
from ..market.models import (
    Category,
    Order,
    OrderLine,
    Payment,
    PaymentState,
    Product,
    Sku,
)
from ..people.access import Actor
from ..people.models import Role
from ..privacy import mask_name
from ..regions.codes import scope_prefix
from ..regions.models import Region
from ..registry.models import Household, Member, Relation
from ..stations import service as stations
from ..stations.models import AssistedOrder, Station
from .pages import signin_required
from .render import render
from .security import check_csrf, current_actor

router = APIRouter(include_in_schema=False)

# What villagers come to the station to buy (seed 001 Table I): inputs first.
CATEGORIES = (Category.MEANS_OF_PRODUCTION, Category.HOUSEHOLD_GOODS, Category.CLOTHING,
              Category.FOOD)
MAX_HOUSEHOLDS = 500


def _keeper(request: Request, session) -> Actor | Response:
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    if actor.role is not Role.STATION_KEEPER:
        raise PermissionDenied("this page is for station keepers")
    return actor


def _station_of(session, actor: Actor) -> Station:
    station = session.scalar(select(Station).where(Station.keeper_username == actor.username,
                                                   Station.active.is_(True))
                             .order_by(Station.id).limit(1))
    if station is None:
        raise NotFound("you keep no open station; ask the county to assign you one")
    return station


def _villagers(session, station: Station) -> list[dict]:
    """The households the station serves: number and the head's masked name."""
    prefix = scope_prefix(station.region_code)
    stmt = (select(Household.id, Household.number, Household.village_code, Member.name)
            .outerjoin(Member, (Member.household_id == Household.id)
                       & (Member.relation == Relation.HEAD))
            .where(Household.village_code.startswith(prefix)))
    merged = getattr(Household, "merged_into_id", None)  # duplicates merged away (issue 6)
    if merged is not None:
        stmt = stmt.where(merged.is_(None))
    rows = session.execute(stmt.order_by(Household.number).limit(MAX_HOUSEHOLDS)).all()
    seen, out = set(), []
    for hid, number, village, name in rows:
        if hid in seen:
            continue
        seen.add(hid)
        out.append({"id": hid, "number": number, "village_code": village,
                    "head": mask_name(name or "")})
    return out


def _offer(session, q: str = "") -> list[dict]:
    """SKUs in stock that a keeper may buy for a villager, inputs first."""
    stmt = (select(Sku, Product).join(Product, Product.id == Sku.product_id)
            .where(Product.active, Sku.stock > 0))
    if q.strip():
        stmt = stmt.where(Product.name.ilike(f"%{q.strip()}%"))
    else:
        stmt = stmt.where(Product.category.in_(CATEGORIES))
    rows = session.execute(stmt.order_by(Product.category, Product.id, Sku.id).limit(60)).all()
    order = {c.value: i for i, c in enumerate(CATEGORIES)}
    rows = sorted(rows, key=lambda r: (order.get(r[1].category.value, 99), r[1].id, r[0].id))
    return [{"sku_id": s.id, "product_id": p.id, "product": p.name, "category": p.category.value,
             "title": s.title, "unit": s.unit, "price_fen": s.price_fen, "weight_g": s.weight_g,
             "in_stock": s.stock} for s, p in rows]


def _items(sku: list[int] | None, qty: list[str] | None) -> list[orders.Item]:
    sku, qty = sku or [], qty or []
    if len(sku) != len(qty):
        raise InvalidInput("the form is incomplete; reload the page", field="qty")
    items = []
    for sku_id, raw in zip(sku, qty):
        raw = (raw or "").strip()
        if not raw or raw == "0":
            continue
        if not raw.isdigit() or not 0 < int(raw) <= orders.MAX_QUANTITY:
            raise InvalidInput(f"quantity {raw!r} is not a whole number from 0 to "
                               f"{orders.MAX_QUANTITY}", field="qty")
        items.append(orders.Item(sku_id, int(raw)))
    if not items:
        raise InvalidInput("choose at least one product and its quantity", field="qty")
    return items


def _home(request: Request, session, actor: Actor, status: int = 200, **extra) -> Response:
    station = _station_of(session, actor)
    region = session.get(Region, station.region_code)
    recent = []
    for a, o in session.execute(
            select(AssistedOrder, Order).join(Order, Order.id == AssistedOrder.order_id)
            .where(AssistedOrder.station_id == station.id)
            .order_by(AssistedOrder.id.desc()).limit(20)).all():
        h = session.get(Household, a.household_id)
        recent.append({"order_id": a.order_id, "household": h.number if h else a.household_id,
                       "items_fen": a.items_fen, "commission_fen": a.commission_fen,
                       "paid": a.paid_at is not None, "state": o.state.value})
    consigned = stations.consignments(session, actor, station.id)
    numbers = dict(session.execute(select(Household.id, Household.number).where(
        Household.id.in_({c["household_id"] for c in consigned}))).all()) if consigned else {}
    for c in consigned:
        c["household_number"] = numbers.get(c["household_id"], c["household_id"])
    return render(request, "station_home.html", status=status, actor=actor,
                  station=stations.station_view(station), region=region.name if region else "",
                  villagers=_villagers(session, station), offer=_offer(session, extra.pop("q", "")),
                  recent=recent, consigned=consigned, **extra)


@router.get("/station")
def station_home(request: Request, session: SessionDep, q: str = "") -> Response:
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    return _home(request, session, actor, q=q, form={})


def _quote_lines(session, items: list[orders.Item]) -> tuple[list[dict], int, int]:
    lines, total, weight = [], 0, 0
    for item in items:
        sku = session.get(Sku, item.sku_id)
        if sku is None:
            raise InvalidInput(f"no SKU {item.sku_id}", field="sku")
        product = session.get(Product, sku.product_id)
        amount = sku.price_fen * item.quantity
        lines.append({"sku_id": sku.id, "product": product.name, "title": sku.title,
                      "unit": sku.unit, "quantity": item.quantity, "price_fen": sku.price_fen,
                      "amount_fen": amount, "in_stock": sku.stock})
        total += amount
        weight += sku.weight_g * item.quantity
    return lines, total, weight


@router.post("/station/purchase")
def purchase(request: Request, session: SessionDep, household_id: int = Form(0),
             sku: Annotated[list[int] | None, Form()] = None,
             qty: Annotated[list[str] | None, Form()] = None, csrf: str = Form("")) -> Response:
    """Step one: the keeper's choice, checked and priced, for the villager to agree to."""
    check_csrf(request, csrf)
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    station = _station_of(session, actor)
    try:
        household = stations._station_household(session, station, household_id)
        items = _items(sku, qty)
        lines, items_fen, weight = _quote_lines(session, items)
        delivery = stations.quote_delivery(session, household.village_code, weight)
    except (InvalidInput, NotFound) as exc:
        return _home(request, session, actor, status=exc.status, message=exc.message,
                     form={"household_id": household_id,
                           "qty": dict(zip(sku or [], qty or []))})
    head = session.scalar(select(Member.name).where(Member.household_id == household.id,
                                                    Member.relation == Relation.HEAD))
    commission = items_fen * station.commission_bp // 10000
    return render(request, "station_confirm.html", actor=actor,
                  station=stations.station_view(station),
                  household={"id": household.id, "number": household.number,
                             "head": mask_name(head or "")},
                  lines=lines, items_fen=items_fen, delivery=delivery,
                  total_fen=items_fen + delivery.fee_fen, commission_fen=commission,
                  key=f"station-{station.id}-{uuid.uuid4().hex}")


@router.post("/station/purchase/confirm")
def confirm(request: Request, session: SessionDep, household_id: int = Form(...),
            key: str = Form(...), sku: Annotated[list[int] | None, Form()] = None,
            qty: Annotated[list[str] | None, Form()] = None, csrf: str = Form("")) -> Response:
    """Step two: the order, placed for the household through the marketplace's checkout
    (the same key again returns the same order: a double tap buys once)."""
    check_csrf(request, csrf)
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    station_id = _station_of(session, actor).id
    session.rollback()  # nothing held while the checkout takes its locks
    order = stations.assisted_checkout(session_factory(), actor, station_id, household_id,
                                       key, _items(sku, qty))
    return RedirectResponse(f"/station/orders/{order['id']}", status_code=303)


def _assisted(session, actor: Actor, order_id: int) -> AssistedOrder:
    a = session.scalar(select(AssistedOrder).where(AssistedOrder.order_id == order_id))
    if a is None:
        raise NotFound(f"order {order_id} is not an assisted purchase")
    if actor.role is Role.STATION_KEEPER and a.keeper_username != actor.username:
        raise PermissionDenied(f"order {order_id} was placed at another station")
    return a


@router.get("/station/orders/{order_id}")
def order_page(order_id: int, request: Request, session: SessionDep) -> Response:
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    a = _assisted(session, actor, order_id)
    view = orders.show(session, actor, order_id)
    names = {}
    for line in session.execute(select(OrderLine.id, Product.name, Sku.title)
                                .join(Sku, Sku.id == OrderLine.sku_id)
                                .join(Product, Product.id == Sku.product_id)
                                .where(OrderLine.order_id == order_id)).all():
        names[line[0]] = f"{line[1]} · {line[2]}"
    for line in view["lines"]:
        line["name"] = names.get(line["id"], "")
    household = session.get(Household, a.household_id)
    station = stations.get_station(session, a.station_id)
    pickup = stations.get_station(session, view["pickup_station_id"]).name \
        if view["pickup_station_id"] else None
    return render(request, "station_order.html", actor=actor, order=view,
                  assisted=stations.assisted_view(a), station=stations.station_view(station),
                  household=household.number, pickup=pickup,
                  paid=request.query_params.get("paid"))


@router.post("/station/orders/{order_id}/pay")
def pay(order_id: int, request: Request, session: SessionDep, csrf: str = Form("")) -> Response:
    """The villager has paid the keeper in cash: the keeper starts the online payment."""
    check_csrf(request, csrf)
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    _assisted(session, actor, order_id)
    session.rollback()
    start = payments.start_payment(session_factory(), actor, order_id)
    return RedirectResponse(f"/station/gateway/{quote(start.reference)}", status_code=303)


def _payment(session, actor: Actor, reference: str) -> Payment:
    p = session.scalar(select(Payment).where(Payment.reference == reference))
    if p is None:
        raise NotFound(f"no payment {reference}")
    _assisted(session, actor, p.order_id)
    return p


@router.get("/station/gateway/{reference}")
def gateway_page(reference: str, request: Request, session: SessionDep) -> Response:
    """The test gateway's payment page (a real gateway shows its own)."""
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    p = _payment(session, actor, reference)
    return render(request, "station_gateway.html", actor=actor, payment=p)


@router.post("/station/gateway/{reference}")
def gateway_pay(reference: str, request: Request, session: SessionDep,
                csrf: str = Form("")) -> Response:
    """Paid on the test gateway's page: the gateway sends its signed callback, which the
    marketplace verifies and applies once — as with a real gateway."""
    check_csrf(request, csrf)
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    p = _payment(session, actor, reference)
    order_id, amount, gateway = p.order_id, p.amount_fen, p.gateway
    if gateway != payments.TestGateway.name:
        raise PermissionDenied(f"payment {reference} is not on the test gateway")
    if p.state is not PaymentState.CAPTURED:
        session.rollback()
        body, signature = payments.gateway_named(gateway).callback(reference, amount)
        payments.handle_callback(session_factory(), gateway, body, signature)
    return RedirectResponse(f"/station/orders/{order_id}?paid=1", status_code=303)


@router.post("/station/orders/{order_id}/received")
def received(order_id: int, request: Request, session: SessionDep,
             csrf: str = Form("")) -> Response:
    """The villager has collected the goods: the order completes, the sellers are paid
    and the station's commission is posted."""
    check_csrf(request, csrf)
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    _assisted(session, actor, order_id)
    session.rollback()
    orders.complete(session_factory(), actor, order_id)
    return RedirectResponse(f"/station/orders/{order_id}", status_code=303)


# Grievances a villager brings to the station (issue 6); a product complaint is filed by
# the buyer from the order, not here.
GRIEVANCE_CATEGORIES = ("left_out", "wrongly_included", "wrong_data", "money_not_received",
                        "other")


@router.post("/station/grievance")
def grievance(request: Request, session: SessionDep, household_id: int = Form(0),
              category: str = Form("other"), text: str = Form(""),
              contact_name: str = Form(""), contact_phone: str = Form(""),
              csrf: str = Form("")) -> Response:
    """File a villager's grievance on the villager's behalf: routed to the responsible
    office with a deadline; the villager keeps the reference to follow it."""
    from ..grievances import service as grievances

    check_csrf(request, csrf)
    actor = _keeper(request, session)
    if isinstance(actor, Response):
        return actor
    station = _station_of(session, actor)
    form = {"g_household_id": household_id, "g_category": category, "g_text": text,
            "g_contact_name": contact_name, "g_contact_phone": contact_phone}
    try:
        if category not in GRIEVANCE_CATEGORIES:
            raise InvalidInput(f"unknown category {category!r}", field="category")
        household = None
        if household_id:
            household = stations._station_household(session, station, household_id)
        g = grievances.file_grievance(
            session, actor, category=category, text=text,
            region_code=household.village_code if household else station.region_code,
            household_id=household.id if household else None, contact_name=contact_name,
            contact_phone=contact_phone)
    except (InvalidInput, NotFound) as exc:
        session.rollback()
        return _home(request, session, actor, status=exc.status, g_message=exc.message,
                     form=form)
    filed = {"reference": g.reference, "due": g.due_at.date().isoformat()}
    session.commit()
    return _home(request, session, actor, filed=filed, form={})
