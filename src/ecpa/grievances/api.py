"""HTTP routes of grievances.  Filing and tracking by reference need no sign-in (a
bearer token, if sent, must be valid and makes the filing the signed-in user's); the
queue, actions, statistics and routing table are for the people who work them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import BaseModel, Field, StrictBool, StrictInt

from ..api.deps import ActorDep, SessionDep, oauth2
from ..api.routing import ApiRouter
from ..people.access import Actor
from ..people.service import actor_of, user_for_token
from . import service
from .models import Category, OfficeLevel, Status

router = ApiRouter(prefix="/api/grievances", tags=["grievances"])


def optional_actor(session: SessionDep,
                   token: Annotated[str | None, Depends(oauth2)]) -> Actor | None:
    return actor_of(user_for_token(session, token)) if token else None


MaybeActor = Annotated[Actor | None, Depends(optional_actor)]


class GrievanceIn(BaseModel):
    category: Category
    text: str = Field(min_length=1, max_length=service.MAX_TEXT)
    region_code: str | None = Field(None, pattern=r"^\d{6}(\d{6})?$",
                                    description="village, township or county code")
    household_id: StrictInt | None = Field(None, gt=0)
    order_id: StrictInt | None = Field(None, gt=0, description="a product complaint's order")
    contact_name: str | None = Field(None, max_length=service.MAX_NAME,
                                     description="optional; the villager, when a keeper files")
    contact_phone: str | None = Field(None, max_length=20, pattern=r"^\+?[0-9 \-]{5,19}$")


class ActionIn(BaseModel):
    action: str = Field(pattern="^(" + "|".join(service.ACTIONS) + ")$")
    note: str = Field("", max_length=service.MAX_TEXT)
    public: StrictBool | None = Field(None, description="whether the filer sees a comment")
    office_region_code: str | None = Field(None, pattern=r"^\d{6}(\d{6})?$")
    office_role: str | None = Field(None, max_length=24)


class ReopenIn(BaseModel):
    reason: str = Field(min_length=1, max_length=service.MAX_TEXT)


class RouteIn(BaseModel):
    category: Category
    office_level: OfficeLevel
    office_role: str = Field(max_length=24)
    deadline_days: StrictInt = Field(ge=1, le=90)
    region_prefix: str = Field("", pattern=r"^\d{0,12}$")
    region_level: str = Field("", pattern="^(|village|township|county)$")


@router.post("", status_code=201)
def file(body: GrievanceIn, session: SessionDep, actor: MaybeActor) -> dict:
    g = service.file_grievance(session, actor, **body.model_dump())
    return {"reference": g.reference, "status": g.status.value,
            "due_on": service.china_date(g.due_at).isoformat(),
            "track": f"/api/grievances/track/{g.reference}"}


@router.get("/track/{reference}")
def track(reference: str, session: SessionDep) -> dict:
    return service.track(session, reference)


@router.post("/track/{reference}/confirm")
def confirm(reference: str, session: SessionDep) -> dict:
    g = service.confirm(session, reference)
    return service.track(session, g.reference)


@router.post("/track/{reference}/reopen")
def reopen(reference: str, body: ReopenIn, session: SessionDep) -> dict:
    g = service.reopen(session, reference, body.reason)
    return service.track(session, g.reference)


@router.get("/queue")
def my_queue(session: SessionDep, actor: ActorDep, status: Status | None = None,
             overdue: bool = False,
             within: Annotated[bool, Query(description="every office inside my scope")] = False,
             ) -> list[dict]:
    return service.queue(session, actor, status=status, overdue_only=overdue, within=within)


@router.get("/stats")
def stats(session: SessionDep, actor: ActorDep,
          region: Annotated[str, Query(pattern=r"^\d{6}(\d{6})?$")]) -> dict:
    return service.stats(session, actor, region)


@router.get("/routes")
def routes(session: SessionDep, actor: ActorDep) -> list[dict]:
    return service.routing_table(session)


@router.put("/routes")
def set_route(body: RouteIn, session: SessionDep, actor: ActorDep) -> list[dict]:
    service.set_route(session, actor, **body.model_dump())
    return service.routing_table(session)


@router.get("/{grievance_id}")
def show(grievance_id: int, session: SessionDep, actor: ActorDep) -> dict:
    return service.detail(session, actor, grievance_id)


@router.post("/{grievance_id}/actions")
def act(grievance_id: int, body: ActionIn, session: SessionDep, actor: ActorDep) -> dict:
    service.act(session, actor, grievance_id, **body.model_dump())
    return service.detail(session, actor, grievance_id)
