"""HTTP routes of production guidance."""

from __future__ import annotations

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service

router = ApiRouter(prefix="/api/guidance", tags=["evaluate"])


@router.get("/demand")
def demand(session: SessionDep, actor: ActorDep, product_id: int | None = None,
           county: str | None = None, horizon: int = 6) -> dict:
    """Monthly demand forecast for a product or a county pavilion, with 80 % and 95 % bands."""
    return service.demand_forecast(session, actor, product_id=product_id, county=county,
                                   horizon=horizon)


@router.get("/plan")
def plan(cooperative_id: int, product_id: int, session: SessionDep, actor: ActorDep,
         months: int = 6, loss_rate: float = 0.05) -> dict:
    """How much each member of a cooperative should produce for the next months."""
    return service.production_plan(session, actor, cooperative_id, product_id, months, loss_rate)
