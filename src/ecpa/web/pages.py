"""Public pages and sign-in: home, search, county pavilions, products, the language
switch, sign-in and sign-out, adding to the cart."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from ..api.deps import SessionDep
from ..errors import EcpaError
from ..market import catalog, orders
from ..market.models import Pavilion
from ..people.service import authenticate, issue_token
from ..regions.models import Region
from .i18n import LANGUAGES
from .render import render
from .security import check_csrf, current_actor, limiter

router = APIRouter(include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Only a path on this site (never an open redirect)."""
    parsed = urlparse(value or "/")
    # "//host" and "/\\host" are read by browsers as another site.
    if (not value or parsed.scheme or parsed.netloc or not value.startswith("/")
            or value[1:2] in ("/", "\\") or "\\" in value):
        return "/"
    return value


def signin_required(request: Request) -> RedirectResponse:
    """To the sign-in form, and back afterwards: to this page, or for a form post to the
    page the form was on."""
    from urllib.parse import quote
    back = request.url.path
    if request.method == "POST":
        back = urlparse(request.headers.get("referer", "")).path or "/"
    return RedirectResponse(f"/signin?next={quote(_safe_next(back))}", status_code=303)


@router.get("/")
def home(request: Request, session: SessionDep) -> Response:
    pavilions = [{"county_code": p.county_code, "title": p.title,
                  "county": session.get(Region, p.county_code).name}
                 for p in session.scalars(select(Pavilion).order_by(Pavilion.id))]
    products = catalog.search(session, poverty_linked=True, limit=12)["items"]
    return render(request, "home.html", actor=current_actor(request, session),
                  pavilions=pavilions, products=products)


@router.get("/search")
def search(request: Request, session: SessionDep, q: str = "", category: str | None = None) -> Response:
    found = catalog.search(session, text=q or None, category=category or None, limit=40)
    return render(request, "search.html", actor=current_actor(request, session), q=q,
                  products=found["items"], total=found["total"])


@router.get("/pavilions/{county_code}")
def pavilion(county_code: str, request: Request, session: SessionDep) -> Response:
    return render(request, "pavilion.html", actor=current_actor(request, session),
                  pavilion=catalog.pavilion_view(session, county_code))


@router.get("/products/{product_id}")
def product(product_id: int, request: Request, session: SessionDep) -> Response:
    from ..trace.models import Batch
    from ..trace.service import batch_uri
    view = catalog.product_view(session, catalog.product_of(session, product_id))
    batches = [{"lot": b.lot, "harvest": b.produced_on.isoformat(),
                "url": f"/trace/01/{b.gtin}/10/{b.lot}", "uri": batch_uri(b)}
               for b in session.scalars(select(Batch).where(Batch.product_id == product_id)
                                        .order_by(Batch.produced_on.desc()).limit(5))]
    return render(request, "product.html", actor=current_actor(request, session),
                  product=view, batches=batches)


@router.get("/lang/{code}")
def switch_language(code: str, next: str = "/") -> Response:
    response = RedirectResponse(_safe_next(next), status_code=303)
    if code in LANGUAGES:
        response.set_cookie("lang", code, max_age=365 * 86400, samesite="lax")
    return response


@router.get("/signin")
def signin_form(request: Request, session: SessionDep, next: str = "/") -> Response:
    return render(request, "signin.html", actor=current_actor(request, session),
                  next=_safe_next(next))


@router.post("/signin")
def signin(request: Request, session: SessionDep, username: str = Form(...),
           password: str = Form(...), csrf: str = Form(""), next: str = Form("/")) -> Response:
    check_csrf(request, csrf)
    key = (request.client.host if request.client else "", username)
    try:
        limiter.check(key)
        user = authenticate(session, username, password)
    except EcpaError as exc:
        if exc.status == 401:
            limiter.failed(key)
        return render(request, "signin.html", status=exc.status, message=exc.message,
                      next=_safe_next(next))
    limiter.clear(key)
    request.session["token"] = issue_token(session, user)
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/signout")
def signout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/", status_code=303)


@router.post("/cart")
def add_to_cart(request: Request, session: SessionDep, sku_id: int = Form(...),
                quantity: int = Form(1), csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    current = {c["sku_id"]: c["quantity"] for c in orders.cart(session, actor)}
    orders.set_cart(session, actor, sku_id, current.get(sku_id, 0) + quantity)
    return RedirectResponse("/cart", status_code=303)
