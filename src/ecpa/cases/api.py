"""HTTP routes of the targeting cases, the public notice board and objections."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, File, UploadFile
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import notice, service
from .models import CaseKind

router = ApiRouter(prefix="/api/cases", tags=["cases"])
public_router = APIRouter(tags=["cases"])


class CaseIn(BaseModel):
    kind: CaseKind
    household_id: int
    reason: str = Field(min_length=1, max_length=2000)
    payload: dict = Field(default_factory=dict, description=(
        "monitoring_entry: {category}; data_change: {fields: {address | main_cause: value}}"))


class StepIn(BaseModel):
    step: str | None = Field(None, description="the step you mean to take; refused if the case is elsewhere")
    comment: str = Field("", max_length=2000)


class CommentIn(BaseModel):
    comment: str = Field(min_length=1, max_length=2000)


class ObjectionIn(BaseModel):
    name: str = Field("", max_length=100, description="may be left empty")
    text: str = Field(min_length=1, max_length=4000)


class ReviewIn(BaseModel):
    upheld: bool
    review: str = Field(min_length=1, max_length=2000)


class ProposalsIn(BaseModel):
    region: str
    year: int = Field(ge=2010, le=2100)


@router.post("", status_code=201)
def open_case(body: CaseIn, session: SessionDep, actor: ActorDep) -> dict:
    case = service.open_case(session, actor, body.kind, body.household_id, body.reason, body.payload)
    return service.case_view(session, case)


@router.get("")
def cases(session: SessionDep, actor: ActorDep, region: str | None = None,
          state: str | None = None, kind: str | None = None) -> list[dict]:
    """The cases of my region (live ones unless a state is given), with whether I may act."""
    return service.queue(session, actor, region, state, kind)


@router.post("/proposals", status_code=201)
def proposals(body: ProposalsIn, session: SessionDep, actor: ActorDep) -> dict:
    """Measure the region and propose cases: monitoring for the flagged, exit for the
    households measured out of poverty."""
    return service.propose_from_assessment(session, actor, body.region, body.year)


@router.get("/notices/{village_code}")
def notices(village_code: str, session: SessionDep) -> dict:
    return notice.notice_board(session, village_code)


@router.get("/{case_id}")
def show(case_id: int, session: SessionDep, actor: ActorDep) -> dict:
    service.require_official(actor)
    case = service.get_case(session, case_id)
    from ..people.access import require_region
    require_region(actor, case.village_code)
    return service.case_view(session, case)


@router.post("/{case_id}/steps")
def take_step(case_id: int, body: StepIn, session: SessionDep, actor: ActorDep) -> dict:
    case = service.take_step(session, actor, case_id, body.comment, expected=body.step)
    return service.case_view(session, case)


@router.post("/{case_id}/rejection")
def reject(case_id: int, body: CommentIn, session: SessionDep, actor: ActorDep) -> dict:
    return service.case_view(session, service.reject(session, actor, case_id, body.comment))


@router.post("/{case_id}/withdrawal")
def withdraw(case_id: int, body: CommentIn, session: SessionDep, actor: ActorDep) -> dict:
    return service.case_view(session, service.withdraw(session, actor, case_id, body.comment))


@router.post("/{case_id}/comments", status_code=201)
def comment(case_id: int, body: CommentIn, session: SessionDep, actor: ActorDep) -> dict:
    service.comment(session, actor, case_id, body.comment)
    return service.case_view(session, service.get_case(session, case_id))


@router.post("/{case_id}/attachments", status_code=201)
async def attach(case_id: int, session: SessionDep, actor: ActorDep,
                 file: UploadFile = File(...)) -> dict:
    data = await file.read(service.MAX_ATTACHMENT + 1)
    a = service.attach(session, actor, case_id, file.filename or "", file.content_type or "", data)
    return {"id": a.id, "filename": a.filename, "sha256": a.sha256, "size": len(data)}


@router.post("/{case_id}/objections", status_code=201)
def object_to(case_id: int, body: ObjectionIn, session: SessionDep) -> dict:
    """Public: anyone may object to a case on notice (no sign-in)."""
    o = service.object_to(session, case_id, body.name, body.text)
    return {"objection": o.id, "case": case_id, "state": "objected"}


@router.post("/objections/{objection_id}/review")
def review(objection_id: int, body: ReviewIn, session: SessionDep, actor: ActorDep) -> dict:
    case = service.review_objection(session, actor, objection_id, body.upheld, body.review)
    return service.case_view(session, case)


@public_router.get("/notices/{village_code}", response_class=HTMLResponse, include_in_schema=False)
def notice_page(village_code: str, session: SessionDep) -> HTMLResponse:
    return HTMLResponse(notice.notice_html(notice.notice_board(session, village_code)))


@public_router.get("/notices/{village_code}/notice.pdf", include_in_schema=False)
def notice_file(village_code: str, session: SessionDep, on: date | None = None) -> Response:
    pdf = notice.notice_pdf(notice.notice_board(session, village_code, on))
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="notice-{village_code}.pdf"'})
