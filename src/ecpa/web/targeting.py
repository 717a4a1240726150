"""Pages of the targeting work that anyone or a cadre needs on a phone: filing a
grievance and following it by its reference (public), and a village's data-quality
worklist (the cadre of that village)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from ..api.deps import SessionDep
from ..errors import EcpaError
from ..grievances import service as grievances
from ..grievances.models import Category
from ..quality import service as quality
from .pages import signin_required
from .render import render
from .security import check_csrf, current_actor

router = APIRouter(include_in_schema=False)


@router.get("/grievances/new")
def grievance_form(request: Request, session: SessionDep, region: str = "") -> Response:
    return render(request, "grievance_form.html", actor=current_actor(request, session),
                  categories=[c.value for c in Category], region=region, message=None)


@router.post("/grievances/new")
def file_grievance(request: Request, session: SessionDep, csrf: str = Form(""),
                   category: str = Form(...), region: str = Form(...), text: str = Form(...),
                   contact_name: str = Form(""), contact_phone: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = current_actor(request, session)
    try:
        g = grievances.file_grievance(session, actor, category=category, text=text,
                                      region_code=region.strip() or None,
                                      contact_name=contact_name or None,
                                      contact_phone=contact_phone or None)
    except EcpaError as exc:
        session.rollback()
        return render(request, "grievance_form.html", status=exc.status, actor=actor,
                      categories=[c.value for c in Category], region=region, message=exc.message)
    reference = g.reference
    session.commit()  # the filer follows the redirect at once: the grievance must be there
    return RedirectResponse(f"/grievances/track?reference={reference}&new=1", status_code=303)


@router.get("/grievances/track")
def track(request: Request, session: SessionDep, reference: str = "", new: int = 0) -> Response:
    view = grievances.track(session, grievances.normalise_reference(reference)) if reference else None
    return render(request, "grievance_track.html", actor=current_actor(request, session),
                  view=view, reference=reference, new=bool(new))


@router.get("/quality")
def worklist(request: Request, session: SessionDep, village: str | None = None,
             state: str = "open") -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    village = village or actor.region_code or ""
    return render(request, "quality_worklist.html", actor=actor,
                  worklist=quality.worklist(session, actor, village, state), state=state)
