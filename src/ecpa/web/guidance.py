"""The production plan page for a cooperative manager."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select

from ..api.deps import SessionDep
from ..guidance import service
from .pages import signin_required
from .render import render
from .security import current_actor

router = APIRouter(include_in_schema=False)


@router.get("/guidance/plan")
def plan_page(request: Request, session: SessionDep, cooperative_id: int | None = None,
              product_id: int | None = None, months: int = 6) -> Response:
    from ..market.models import Product, Seller
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    choices = session.execute(select(Product.id, Product.name, Seller.organisation_id)
                              .join(Seller, Seller.id == Product.seller_id)
                              .where(Seller.organisation_id.is_not(None)).order_by(Product.id)).all()
    plan = None
    if cooperative_id and product_id:
        plan = service.production_plan(session, actor, cooperative_id, product_id, months)
    return render(request, "guidance_plan.html", actor=actor, plan=plan, choices=choices,
                  months=months)
