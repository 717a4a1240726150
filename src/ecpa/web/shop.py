"""The consumer's purchase on a cheap phone: the cart, the checkout (delivery region, the
delivery quote and the campaign discount shown before confirming), the order page (where
each line's goods came from, by households counted, never named; the batch's
traceability page), payment through the test gateway's own page, cancellation, receipt;
crowdfunding pre-sales with their progress; the buyer's orders.

Plain forms and links, no JavaScript.  Every POST checks the CSRF token.  The checkout
form carries an idempotency key made when the form is rendered, so a double submit (or
the back button and submit again) finds the same order.  The write routes hold no
request session while the marketplace works in its own transactions."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..api.deps import SessionDep
from ..db import session_factory, session_scope, utcnow
from ..errors import EcpaError, InvalidInput, NotFound
from ..market import orders, payments, returns
from ..market.models import (
    Order,
    Payment,
    PaymentState,
    Product,
    Seller,
    Shipment,
    Sku,
)
from ..people.access import Actor
from ..regions.models import Level, Region
from .pages import signin_required
from .render import render
from .security import check_csrf, current_actor

router = APIRouter(include_in_schema=False)

CHINA = timedelta(hours=8)  # times are stored in UTC and shown in China time
MAX_REGIONS = 1000  # the ship-to choices offered on the checkout form


def china_time(value: datetime | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.replace(tzinfo=None) - value.utcoffset()
    return (value + CHINA).strftime("%Y-%m-%d %H:%M")


def _discount_hook():
    from ..market.api import _discount_hook as hook
    return hook()


def _signed_in(request: Request) -> Actor | None:
    """The actor, read in a short session of its own (closed before any write)."""
    with session_scope() as s:
        return current_actor(request, s)


def _signin(request: Request) -> RedirectResponse:
    """To the sign-in form and back to this very page, its query included (a GET)."""
    from urllib.parse import quote
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(back, safe='')}", status_code=303)


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


# --- the cart -----------------------------------------------------------------------------

def _cart_lines(s: Session, actor: Actor) -> list[dict]:
    lines = orders.cart(s, actor)
    names = dict(s.execute(select(Sku.id, Product.name).join(Product, Product.id == Sku.product_id)
                           .where(Sku.id.in_([x["sku_id"] for x in lines]))).all())
    pids = dict(s.execute(select(Sku.id, Sku.product_id)
                          .where(Sku.id.in_([x["sku_id"] for x in lines]))).all())
    return [{**x, "product": names.get(x["sku_id"], ""), "product_id": pids.get(x["sku_id"])}
            for x in lines]


@router.get("/cart")
def cart_page(request: Request, session: SessionDep) -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return _signin(request)
    lines = _cart_lines(session, actor)
    return render(request, "shop_cart.html", actor=actor, lines=lines,
                  total=sum(x["amount_fen"] for x in lines))


@router.post("/cart/update")
def cart_update(request: Request, session: SessionDep, sku_id: int = Form(...),
                quantity: int = Form(...), csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    orders.set_cart(session, actor, sku_id, quantity)
    return _redirect("/cart")


# --- the checkout -------------------------------------------------------------------------

def _ship_to_choices(s: Session) -> list[dict]:
    """The regions a delivery zone covers: the counties with zones, their townships and
    villages (the buyer may also type any code)."""
    from ..stations.models import DeliveryZone
    counties = list(s.scalars(select(DeliveryZone.county_code).distinct()))
    if not counties:
        return []
    regions = s.scalars(select(Region).where(or_(*[Region.code.startswith(c) for c in counties]),
                                             Region.level.in_([Level.COUNTY, Level.TOWNSHIP,
                                                               Level.VILLAGE]))
                        .order_by(Region.code).limit(MAX_REGIONS)).all()
    names = {r.code: r.name for r in regions}
    out = []
    for r in regions:
        label = r.name
        if r.level is Level.VILLAGE and r.parent_code in names:
            label = f"{names[r.parent_code]} · {r.name}"
        out.append({"code": r.code, "label": label})
    return out


def _wanted(s: Session, actor: Actor, presale_id: int | None, quantity: int) -> tuple[list, dict | None]:
    """The (Sku, quantity) pairs to check out and the pre-sale, if one is joined."""
    if presale_id is not None:
        from ..campaigns.service import progress
        presale = progress(s, presale_id)
        sku = s.get(Sku, presale["sku_id"])
        if not 0 < quantity <= orders.MAX_QUANTITY:
            raise InvalidInput(f"quantity must be 1 to {orders.MAX_QUANTITY}", field="quantity")
        return [(sku, quantity)], presale
    lines = orders.cart(s, actor)
    skus = {x.id: x for x in s.scalars(select(Sku).where(Sku.id.in_([x["sku_id"] for x in lines])))}
    return [(skus[x["sku_id"]], x["quantity"]) for x in lines], None


def _preview(actor: Actor, pairs: list, ship_to: str) -> dict:
    """What the order would cost: the delivery quote and the campaign's discount, worked
    out in a transaction that is rolled back (the checkout works them out again)."""
    from ..campaigns.models import Campaign
    from ..stations.service import quote_delivery
    s = session_factory()()
    try:
        skus = {x.id: x for x in s.scalars(select(Sku).where(Sku.id.in_([sku.id for sku, _ in pairs])))}
        mine = [(skus[sku.id], qty) for sku, qty in pairs]
        items = sum(sku.price_fen * qty for sku, qty in mine)
        weight = sum(sku.weight_g * qty for sku, qty in mine)
        quote = quote_delivery(s, ship_to, weight)
        hook = _discount_hook()
        off, campaign_id = hook(s, actor, mine, utcnow()) if hook else ([0] * len(mine), None)
        campaign = s.get(Campaign, campaign_id).name if campaign_id else None
        station = _station(s, quote.pickup_station_id)
        region = s.get(Region, ship_to)
        return {"items_fen": items, "discount_fen": sum(off), "campaign": campaign,
                "delivery_fee_fen": quote.fee_fen, "days": quote.days, "station": station,
                "total_fen": items - sum(off) + quote.fee_fen,
                "region": region.name if region else ship_to}
    finally:
        s.rollback()
        s.close()


def _station(s: Session, station_id: int | None) -> dict | None:
    if station_id is None:
        return None
    from ..stations.models import Station
    st = s.get(Station, station_id)
    if st is None:
        return None
    region = s.get(Region, st.region_code)
    return {"name": st.name, "region": region.name if region else st.region_code, "phone": st.phone}


@router.get("/checkout")
def checkout_form(request: Request, session: SessionDep, ship_to: str = "", presale: int | None = None,
                  quantity: int = 1, address: str = "", contact_name: str = "") -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return _signin(request)
    pairs, joined = _wanted(session, actor, presale, quantity)
    names = dict(session.execute(select(Product.id, Product.name).where(
        Product.id.in_({sku.product_id for sku, _ in pairs}))).all())
    lines = [{"product": names.get(sku.product_id, ""), "title": sku.title, "quantity": qty,
              "price_fen": sku.price_fen, "amount_fen": sku.price_fen * qty} for sku, qty in pairs]
    choices = _ship_to_choices(session)
    session.rollback()  # nothing held while the preview works
    ship_to = ship_to.strip()
    preview, problem = None, None
    if pairs and ship_to:
        try:
            preview = _preview(actor, pairs, ship_to)
        except EcpaError as exc:
            problem = exc.message
    return render(request, "shop_checkout.html", actor=actor, lines=lines, presale=joined,
                  quantity=quantity, ship_to=ship_to, address=address, contact_name=contact_name,
                  choices=choices, preview=preview, problem=problem,
                  key=secrets.token_urlsafe(18))


@router.post("/checkout")
def checkout(request: Request, key: str = Form(...), ship_to: str = Form(...),
             address: str = Form(""), contact_name: str = Form(""), presale: int | None = Form(None),
             quantity: int = Form(1), csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = _signed_in(request)
    if actor is None:
        return signin_required(request)
    if presale is not None:
        from ..campaigns.service import pledge
        order = pledge(session_factory(), actor, presale, key, quantity, ship_to_code=ship_to.strip(),
                       address=address, contact_name=contact_name)
    else:
        order = orders.checkout(session_factory(), actor, key, None, ship_to_code=ship_to.strip(),
                                address=address, contact_name=contact_name,
                                discount=_discount_hook())
    return _redirect(f"/orders/{order['id']}")


# --- orders -------------------------------------------------------------------------------

STATES = ("pending_payment", "paid", "shipped", "delivered", "completed", "cancelled", "expired")


def _order_page_view(s: Session, actor: Actor, order_id: int) -> dict:
    from ..trace.models import Batch
    view = orders.show(s, actor, order_id)
    order = s.get(Order, order_id)
    sku_ids = [x["sku_id"] for x in view["lines"]]
    skus = {x.id: x for x in s.scalars(select(Sku).where(Sku.id.in_(sku_ids)))}
    products = {p.id: p for p in s.scalars(select(Product).where(
        Product.id.in_({x.product_id for x in skus.values()})))}
    sellers = {x.id: x for x in s.scalars(select(Seller).where(
        Seller.id.in_({x["seller_id"] for x in view["lines"]})))}
    origins = {r.code: r.name for r in s.scalars(select(Region).where(
        Region.code.in_({p.origin_code for p in products.values()})))}
    batches: dict[int, Batch] = {}
    for b in s.scalars(select(Batch).where(Batch.product_id.in_(list(products)))
                       .order_by(Batch.produced_on.desc(), Batch.id.desc())):
        batches.setdefault(b.product_id, b)  # the latest batch of the product …
        if b.sku_id is not None and b.sku_id in skus:
            batches.setdefault(-b.sku_id, b)  # … or of the very SKU
    lines = []
    for x in view["lines"]:
        sku = skus[x["sku_id"]]
        product = products[sku.product_id]
        batch = batches.get(-sku.id) or batches.get(product.id)
        lines.append({**x, "product": product.name, "product_id": product.id, "title": sku.title,
                      "seller": sellers[x["seller_id"]].name,
                      "poverty_linked": sellers[x["seller_id"]].poverty_linked,
                      "origin": origins.get(product.origin_code, product.origin_code),
                      "household_count": len(x["households"] or []),
                      "trace": f"/trace/01/{batch.gtin}/10/{batch.lot}" if batch else None,
                      "lot": batch.lot if batch else None})
    # Returns: each line's last request, and whether one can still be asked for.
    asked = {}
    for r in reversed(returns.list_returns(s, actor, order_id=order_id)):
        for line_id in r["lines"]:
            asked[line_id] = r
    window = order.delivered_at is not None and order.state.value in ("delivered", "completed") \
        and returns.is_open(order.delivered_at, utcnow())
    for x in lines:
        category = products[x["product_id"]].category
        x["return"] = asked.get(x["id"])
        x["may_return"] = window and not x["refunded"] and x["return"] is None and \
            actor.username in (order.buyer, order.assisted_by)
        x["without_reason"] = category not in returns.PERISHABLE_OR_SERVICE
    region = s.get(Region, order.ship_to_code)
    shipment = s.scalar(select(Shipment).where(Shipment.order_id == order_id))
    return {**view, "lines": lines,
            "return_until": returns.last_day(order.delivered_at) if window else None, "ship_to": region.name if region else order.ship_to_code,
            "address": order.ship_to_address, "contact_name": order.contact_name,
            "created": china_time(order.created_at), "pay_before": china_time(order.reserved_until),
            "paid_at": china_time(order.paid_at),
            "station": _station(s, order.pickup_station_id),
            "shipment": {"carrier": shipment.carrier, "tracking": shipment.tracking_number}
            if shipment else None}


@router.get("/orders")
def my_orders(request: Request, session: SessionDep) -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return _signin(request)
    rows = session.scalars(select(Order).where(Order.buyer == actor.username)
                           .order_by(Order.id.desc()).limit(100)).all()
    mine = [{"id": o.id, "state": o.state.value, "total_fen": o.total_fen,
             "created": china_time(o.created_at)} for o in rows]
    return render(request, "shop_orders.html", actor=actor, orders=mine)


@router.get("/orders/{order_id}")
def order_page(order_id: int, request: Request, session: SessionDep) -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return _signin(request)
    return render(request, "shop_order.html", actor=actor,
                  order=_order_page_view(session, actor, order_id))


@router.post("/orders/{order_id}/pay")
def pay(order_id: int, request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = _signed_in(request)
    if actor is None:
        return signin_required(request)
    start = payments.start_payment(session_factory(), actor, order_id)
    return _redirect(f"/pay/{start.reference}")


@router.post("/orders/{order_id}/cancel")
def cancel(order_id: int, request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = _signed_in(request)
    if actor is None:
        return signin_required(request)
    orders.cancel(session_factory(), actor, order_id)
    return _redirect(f"/orders/{order_id}")


@router.post("/orders/{order_id}/received")
def received(order_id: int, request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = _signed_in(request)
    if actor is None:
        return signin_required(request)
    orders.complete(session_factory(), actor, order_id)
    return _redirect(f"/orders/{order_id}")


@router.post("/orders/{order_id}/return")
def ask_return(order_id: int, request: Request, csrf: str = Form(""), line_id: int = Form(...),
               kind: str = Form("quality"), reason: str = Form("")) -> Response:
    """A line sent back: one request per line from this page (a second click is the same
    request)."""
    check_csrf(request, csrf)
    actor = _signed_in(request)
    if actor is None:
        return signin_required(request)
    returns.request_return(session_factory(), actor, order_id, f"web:{order_id}:{line_id}",
                           [line_id], kind, reason)
    return _redirect(f"/orders/{order_id}")


# --- the test gateway's payment page ------------------------------------------------------

def _test_payment(s: Session, actor: Actor, reference: str) -> tuple[Payment, Order]:
    payment = s.scalar(select(Payment).where(Payment.reference == reference))
    if payment is None or payment.gateway != payments.TestGateway.name:
        raise NotFound(f"no test-gateway payment {reference}", field="reference")
    order = s.get(Order, payment.order_id)
    orders.require_party(s, actor, order, seller=False)
    return payment, order


@router.get("/pay/{reference}")
def gateway_page(reference: str, request: Request, session: SessionDep) -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return _signin(request)
    payment, order = _test_payment(session, actor, reference)
    if payment.state is not PaymentState.PENDING:
        return _redirect(f"/orders/{order.id}")
    return render(request, "shop_pay.html", actor=actor, reference=reference,
                  amount_fen=payment.amount_fen, order_id=order.id)


@router.post("/pay/{reference}")
def gateway_pay(reference: str, request: Request, action: str = Form("pay"),
                csrf: str = Form("")) -> Response:
    """The consumer pays (or gives up) on the test gateway's page, and the gateway sends
    its signed callback, as a real gateway would: the same calls as the API's route."""
    check_csrf(request, csrf)
    with session_scope() as s:
        actor = current_actor(request, s)
        if actor is None:
            return signin_required(request)
        payment, order = _test_payment(s, actor, reference)
        amount, order_id, pending = payment.amount_fen, order.id, payment.state is PaymentState.PENDING
    if pending:  # nothing held while the 'gateway' calls back
        body, signature = payments.gateway_named("test").callback(
            reference, amount, "paid" if action == "pay" else "cancelled")
        payments.handle_callback(session_factory(), "test", body, signature)
    return _redirect(f"/orders/{order_id}")


# --- crowdfunding pre-sales ---------------------------------------------------------------

@router.get("/presales/{presale_id}")
def presale_page(presale_id: int, request: Request, session: SessionDep) -> Response:
    from ..campaigns.models import Presale
    from ..campaigns.service import progress
    now = utcnow()
    view = progress(session, presale_id, now)
    p = session.get(Presale, presale_id)
    if p is None:
        raise NotFound(f"no pre-sale {presale_id}", field="presale_id")
    sku = session.get(Sku, view["sku_id"])
    left = view["seconds_left"]
    view = {**view, "product_id": sku.product_id, "sku_title": sku.title,
            "days_left": left // 86400, "hours_left": left % 86400 // 3600,
            "deadline_local": china_time(p.deadline), "opens_local": china_time(p.opens_at),
            "open": view["state"] == "open" and p.opens_at <= now < p.deadline,
            "not_yet": view["state"] == "open" and now < p.opens_at,
            "bar": min(100, view["percent"])}
    return render(request, "shop_presale.html", actor=current_actor(request, session), presale=view)
