"""HTTP routes of campaigns: consumption poverty alleviation days and crowdfunding
pre-sales.  A pre-sale's progress is public; everything else needs sign-in."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, Field, StrictBool, StrictInt

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from ..db import session_factory
from ..market.orders import MAX_QUANTITY
from . import service

router = ApiRouter(prefix="/api/campaigns", tags=["campaigns"])
# Ids fit the database's INTEGER: a larger one is a 422, not a database error.
PresaleId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class CampaignIn(BaseModel):
    """Times are UTC unless they carry an offset."""

    name: str = Field(min_length=1, max_length=200)
    starts_at: datetime
    ends_at: datetime
    counties: list[str] = Field(min_length=1, description="featured county codes (GB/T 2260)")
    poverty_linked_only: StrictBool = False
    percent_off_bp: StrictInt = Field(0, ge=0, lt=10_000, description="basis points off: 1500 = 15 %")
    threshold_fen: StrictInt | None = Field(None, gt=0, le=service.MAX_FEN,
                                            description="满减: the threshold, at list price")
    threshold_off_fen: StrictInt = Field(0, ge=0, le=service.MAX_FEN,
                                         description="满减: fen off at the threshold")
    per_buyer_limit: StrictInt | None = Field(None, ge=1, le=service.MAX_LIMIT,
                                              description="units of each SKU per buyer")


class PresaleIn(BaseModel):
    """Times are UTC unless they carry an offset."""

    sku_id: StrictInt = Field(ge=1, le=2**31 - 1)
    target_units: StrictInt = Field(gt=0)
    deadline: datetime
    delivery_date: date
    opens_at: datetime | None = None
    title: str | None = Field(None, max_length=200)


class PledgeIn(BaseModel):
    key: str = Field(min_length=1, max_length=80, description="the pledge's idempotency key")
    quantity: StrictInt = Field(gt=0, le=MAX_QUANTITY)
    ship_to_code: str = Field(description="the delivery address's region")
    address: str = Field("", max_length=300)
    contact_name: str = Field("", max_length=100)


@router.post("", status_code=201)
def create_campaign(body: CampaignIn, session: SessionDep, actor: ActorDep) -> dict:
    """A consumption poverty alleviation day (county officers and administrators)."""
    return service.campaign_view(service.create_campaign(session, actor, **body.model_dump()))


@router.get("")
def list_campaigns(session: SessionDep, actor: ActorDep, active_at: datetime | None = None) -> list[dict]:
    return service.list_campaigns(session, actor, active_at)


@router.post("/presales", status_code=201)
def create_presale(body: PresaleIn, session: SessionDep, actor: ActorDep) -> dict:
    """A crowdfunding pre-sale of a SKU (its seller's manager, or an officer)."""
    return service.presale_view(service.create_presale(session, actor, **body.model_dump()))


@router.get("/presales/{presale_id}")
def presale_progress(presale_id: PresaleId, session: SessionDep) -> dict:
    """Public: units pledged and paid, share of the target, time left."""
    return service.progress(session, presale_id)


@router.post("/presales/{presale_id}/pledges", status_code=201)
def pledge(presale_id: PresaleId, body: PledgeIn, actor: ActorDep) -> dict:
    """Pledge: an order of the pre-sale's SKU; pay it as any order within 15 minutes."""
    return service.pledge(session_factory(), actor, presale_id, body.key, body.quantity,
                          ship_to_code=body.ship_to_code, address=body.address,
                          contact_name=body.contact_name)


@router.post("/presales/{presale_id}/close")
def close_presale(presale_id: PresaleId, actor: ActorDep) -> dict:
    """At the deadline: keep the paid pledges, or refund every one in full (run again to
    finish an interrupted close)."""
    return service.close_presale(session_factory(), actor, presale_id)
