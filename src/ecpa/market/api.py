"""HTTP routes of the marketplace.  Browsing is public; buying, selling and certifying
need sign-in.  Write requests accept an ``Idempotency-Key`` header (api/idempotency.py)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, StrictInt

from ..api.deps import ActorDep, SessionDep, cached_actor
from ..api.routing import ApiRouter
from ..db import session_factory
from ..errors import PermissionDenied
from ..people.models import Role
from . import catalog, orders, payments, returns
from .models import Category, LinkKind, ReturnKind, SellerKind

router = ApiRouter(prefix="/api/market", tags=["market"])


class SellerIn(BaseModel):
    kind: SellerKind
    name: str = Field(min_length=1, max_length=200)
    region_code: str
    manager_username: str | None = None
    household_id: int | None = None
    organisation_id: int | None = None


class LinkIn(BaseModel):
    household_id: int
    kind: LinkKind


class NoteIn(BaseModel):
    note: str = Field("", max_length=500)


class ProductIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    category: Category
    origin_code: str
    description: str = Field("", max_length=5000)


class SkuIn(BaseModel):
    code: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    unit: str = Field(min_length=1, max_length=20)
    weight_g: StrictInt = Field(ge=0)
    price_fen: StrictInt = Field(gt=0)
    stock: StrictInt = Field(ge=0)


class SkuPatch(BaseModel):
    price_fen: StrictInt | None = Field(None, gt=0)
    add_stock: StrictInt | None = None


class PavilionIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    story: str = Field("", max_length=20000)
    featured: list[int] = []


class CartIn(BaseModel):
    sku_id: int
    quantity: StrictInt = Field(ge=0, le=orders.MAX_QUANTITY)


class ItemIn(BaseModel):
    sku_id: int
    quantity: StrictInt = Field(gt=0, le=orders.MAX_QUANTITY)


class CheckoutIn(BaseModel):
    key: str = Field(min_length=1, max_length=100, description="the checkout's idempotency key")
    items: list[ItemIn] | None = Field(None, description="buy these now; omit to check out the cart")
    ship_to_code: str = Field(description="the delivery address's region (village, township, county)")
    address: str = Field("", max_length=300)
    contact_name: str = Field("", max_length=100)


class RefundIn(BaseModel):
    key: str = Field(min_length=1, max_length=150)
    line_ids: list[int] | None = None
    reason: str = Field(min_length=1, max_length=300)


class ReturnIn(BaseModel):
    key: str = Field(min_length=1, max_length=150, description="idempotency key of the request")
    line_ids: list[int] = Field(min_length=1, description="the order lines to return")
    kind: ReturnKind = Field(description="no_reason (within 7 days of delivery; not for fresh "
                                         "produce or services) or quality")
    reason: str = Field(min_length=1, max_length=300)


class DecisionIn(BaseModel):
    accept: bool
    note: str = Field("", max_length=300, description="why, when refused")


class ShipIn(BaseModel):
    carrier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)


@router.post("/sellers", status_code=201)
def create_seller(body: SellerIn, session: SessionDep, actor: ActorDep) -> dict:
    s = catalog.create_seller(session, actor, **body.model_dump())
    return {"id": s.id, "name": s.name, "kind": s.kind.value, "region_code": s.region_code,
            "manager_username": s.manager_username, "poverty_linked": s.poverty_linked}


@router.post("/sellers/{seller_id}/links", status_code=201)
def link(seller_id: int, body: LinkIn, session: SessionDep, actor: ActorDep) -> dict:
    catalog.link_household(session, actor, seller_id, body.household_id, body.kind)
    return {"seller_id": seller_id,
            "poor_households": len(catalog.linked_poor_households(session, seller_id))}


@router.post("/sellers/{seller_id}/certificate")
def certify(seller_id: int, body: NoteIn, session: SessionDep, actor: ActorDep) -> dict:
    c = catalog.certify(session, actor, seller_id, body.note)
    return {"seller_id": seller_id, "poverty_linked": True, "households": c.households,
            "by": c.by, "at": c.at.isoformat(timespec="seconds")}


@router.post("/sellers/{seller_id}/certificate/revocation")
def revoke(seller_id: int, body: NoteIn, session: SessionDep, actor: ActorDep) -> dict:
    c = catalog.revoke(session, actor, seller_id, body.note)
    return {"seller_id": seller_id, "poverty_linked": False, "by": c.by,
            "at": c.at.isoformat(timespec="seconds")}


@router.post("/sellers/{seller_id}/products", status_code=201)
def add_product(seller_id: int, body: ProductIn, session: SessionDep, actor: ActorDep) -> dict:
    p = catalog.add_product(session, actor, seller_id, **body.model_dump())
    return catalog.product_view(session, p)


@router.post("/products/{product_id}/skus", status_code=201)
def add_sku(product_id: int, body: SkuIn, session: SessionDep, actor: ActorDep) -> dict:
    catalog.add_sku(session, actor, product_id, **body.model_dump())
    return catalog.product_view(session, catalog.product_of(session, product_id))


@router.patch("/skus/{sku_id}")
def patch_sku(sku_id: int, body: SkuPatch, session: SessionDep, actor: ActorDep) -> dict:
    sku = catalog.update_sku(session, actor, sku_id, **body.model_dump())
    return {"id": sku.id, "price_fen": sku.price_fen, "in_stock": sku.stock}


@router.get("/products")
def search(session: SessionDep, q: str | None = None, category: str | None = None,
           county: str | None = None, poverty_linked: bool | None = None,
           max_price_fen: int | None = None, limit: int = 20, offset: int = 0) -> dict:
    """Public: search the catalog (poverty-linked sellers first)."""
    return catalog.search(session, text=q, category=category, county=county,
                          poverty_linked=poverty_linked, max_price_fen=max_price_fen,
                          limit=limit, offset=offset)


@router.get("/products/{product_id}")
def product(product_id: int, session: SessionDep) -> dict:
    return catalog.product_view(session, catalog.product_of(session, product_id))


@router.get("/pavilions/{county_code}")
def pavilion(county_code: str, session: SessionDep) -> dict:
    return catalog.pavilion_view(session, county_code)


@router.put("/pavilions/{county_code}")
def set_pavilion(county_code: str, body: PavilionIn, session: SessionDep, actor: ActorDep) -> dict:
    catalog.set_pavilion(session, actor, county_code, body.title, body.story, body.featured)
    return catalog.pavilion_view(session, county_code)


@router.get("/cart")
def get_cart(session: SessionDep, actor: ActorDep) -> list[dict]:
    return orders.cart(session, actor)


@router.put("/cart")
def put_cart(body: CartIn, session: SessionDep, actor: ActorDep) -> list[dict]:
    return orders.set_cart(session, actor, body.sku_id, body.quantity)


@router.post("/checkout", status_code=201, response_model=None)
def checkout(body: CheckoutIn, actor: ActorDep) -> JSONResponse:
    """Reserve the stock and create the order (the same key again returns the same order);
    pay within 15 minutes or the stock goes back."""
    items = [orders.Item(i.sku_id, i.quantity) for i in body.items] if body.items else None
    # The order view is plain JSON already: answered as it is, without FastAPI's
    # re-encoding (the busiest write of a sale day).
    return JSONResponse(orders.checkout(session_factory(), actor, body.key, items,
                                        ship_to_code=body.ship_to_code, address=body.address,
                                        contact_name=body.contact_name,
                                        discount=_discount_hook()), status_code=201)


class CheckoutFastLane:
    """ASGI middleware in front of ``POST /api/market/checkout`` (market/fastlane.py).

    It answers a checkout itself only when the buyer's token is already checked and kept
    in memory, there is no ``Idempotency-Key`` header (that middleware's bookkeeping is
    the ordinary route's), the body is valid and lists its items, and the lane's one
    statement placed the order.  Otherwise the request, its body replayed, goes on to
    the ordinary route as if the lane were not there."""

    PATH = "/api/market/checkout"

    def __init__(self, app, lanes: dict) -> None:
        self.app, self.lanes = app, lanes

    async def __call__(self, scope, receive, send) -> None:
        lane = self.lanes.get("checkout")
        if (lane is None or scope["type"] != "http" or scope["path"] != self.PATH
                or scope["method"] != "POST"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        actor = _known_actor(headers.get(b"authorization", b""))
        if (actor is None or b"idempotency-key" in headers
                or not headers.get(b"content-type", b"").startswith(b"application/json")):
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        try:
            wanted = CheckoutIn.model_validate_json(body)
        except ValueError:
            wanted = None
        view = None
        if wanted is not None and wanted.items:
            view = await lane.checkout(actor, wanted.key,
                                       [orders.Item(i.sku_id, i.quantity) for i in wanted.items],
                                       ship_to_code=wanted.ship_to_code, address=wanted.address,
                                       contact_name=wanted.contact_name)
        if view is None:
            return await self.app(scope, replay, send)
        await JSONResponse(view, status_code=201)(scope, replay, send)


def _known_actor(authorization: bytes):
    """The actor of a bearer token checked recently (api/deps.py keeps them), or None."""
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    return cached_actor(token)


def _discount_hook():
    try:
        from ..campaigns.service import discount_hook
    except ImportError:
        return None
    return discount_hook


@router.get("/orders/{order_id}")
def show_order(order_id: int, session: SessionDep, actor: ActorDep) -> dict:
    return orders.show(session, actor, order_id)


@router.post("/orders/{order_id}/payments", status_code=201)
def pay(order_id: int, actor: ActorDep, gateway: str = "test") -> dict:
    return asdict(payments.start_payment(session_factory(), actor, order_id, gateway))


@router.post("/orders/{order_id}/cancellation")
def cancel(order_id: int, actor: ActorDep) -> dict:
    return orders.cancel(session_factory(), actor, order_id)


@router.post("/orders/{order_id}/refunds", status_code=201)
def refund(order_id: int, body: RefundIn, actor: ActorDep) -> dict:
    return orders.refund(session_factory(), actor, order_id, body.key, body.line_ids, body.reason)


@router.post("/orders/{order_id}/returns", status_code=201)
def request_return(order_id: int, body: ReturnIn, actor: ActorDep) -> dict:
    """The buyer returns delivered goods: within 7 days without a reason (not fresh
    produce or services), or for their quality."""
    return returns.request_return(session_factory(), actor, order_id, body.key, body.line_ids,
                                  body.kind, body.reason)


@router.get("/returns")
def list_returns(session: SessionDep, actor: ActorDep, state: str | None = None,
                 order_id: int | None = None) -> list[dict]:
    """Returns the reader is a party to: a seller's queue is ``state=requested``."""
    return returns.list_returns(session, actor, state, order_id)


@router.post("/returns/{return_id}/decision")
def decide_return(return_id: int, body: DecisionIn, actor: ActorDep) -> dict:
    """A seller of the goods (or an officer) accepts — the money goes back — or refuses."""
    return returns.decide_return(session_factory(), actor, return_id, body.accept, body.note)


@router.post("/orders/{order_id}/shipment")
def ship(order_id: int, body: ShipIn, actor: ActorDep) -> dict:
    return orders.ship(session_factory(), actor, order_id, body.carrier, body.tracking_number)


@router.post("/orders/{order_id}/delivery")
def delivered(order_id: int, actor: ActorDep) -> dict:
    return orders.mark_delivered(session_factory(), actor, order_id)


@router.post("/orders/{order_id}/completion")
def complete(order_id: int, actor: ActorDep) -> dict:
    return orders.complete(session_factory(), actor, order_id)


@router.post("/payments/{gateway}/callback")
async def callback(gateway: str, request: Request) -> dict:
    """The gateway's server-to-server callback, signed in the ``X-Signature`` header."""
    from starlette.concurrency import run_in_threadpool
    body = await request.body()
    return await run_in_threadpool(payments.handle_callback, session_factory(), gateway, body,
                                   request.headers.get("x-signature", ""))


@router.post("/test-gateway/{reference}/pay")
def test_gateway_pay(reference: str, session: SessionDep, actor: ActorDep) -> dict:
    """The test gateway's payment page: the consumer 'pays', and the gateway sends its
    signed callback, as a real gateway would."""
    from sqlalchemy import select

    from .models import Payment
    payment = session.scalar(select(Payment).where(Payment.reference == reference))
    if payment is None or payment.gateway != payments.TestGateway.name:
        raise PermissionDenied(f"no test-gateway payment {reference}", field="reference")
    amount = payment.amount_fen
    session.rollback()  # nothing held while the 'gateway' calls back
    body, signature = payments.gateway_named("test").callback(reference, amount)
    return payments.handle_callback(session_factory(), "test", body, signature)


@router.post("/reservations/release")
def release(actor: ActorDep) -> dict:
    """Give back the stock of unpaid orders past their reservation (run by a timer)."""
    if actor.role not in (Role.ADMINISTRATOR, Role.COUNTY_OFFICER):
        raise PermissionDenied("only an administrator releases reservations")
    return {"released": orders.release_expired(session_factory())}
