"""The village's public page, reached by its QR code (seed 001 §IV.D, the Tencent village
platform): its story, products, scenery and farm stays, and a form to ask the experts for
farming advice or legal help, which the county answers; the asker reads the answer with
the reference given when asking.  The county's page of questions to answer."""

from __future__ import annotations

import io
import threading
import time
from collections import defaultdict, deque
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from ..advice import service as advice
from ..advice.models import AdviceCategory
from ..api.deps import SessionDep
from ..errors import EcpaError, NotFound, PermissionDenied
from ..market import catalog
from ..market.models import Category, Pavilion
from ..people.models import Role
from ..regions.models import Level, Region
from ..stations.models import Station
from .pages import signin_required
from .render import render
from .security import check_csrf, current_actor

router = APIRouter(include_in_schema=False)

ASKS, ASK_WINDOW_S = 10, 3600  # questions per address an hour: the form is open to all


class TooManyQuestions(EcpaError):
    status = 429
    code = "too_many_questions"


class _AskLimit:
    def __init__(self):
        self._seen: dict[str, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def take(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._seen[address]
            while q and now - q[0] > ASK_WINDOW_S:
                q.popleft()
            if len(q) >= ASKS:
                raise TooManyQuestions("too many questions from this address; try again later")
            q.append(now)


ask_limit = _AskLimit()


def _village(session, code: str) -> Region:
    region = session.get(Region, code)
    if region is None or region.level is not Level.VILLAGE:
        raise NotFound(f"no village {code}")
    return region


def _texts(value) -> list[dict]:
    """A profile entry as a list of {title, text}: accepts a string, a list of strings,
    or a list of objects with title/name and text/description."""
    if not value:
        return []
    if isinstance(value, str):
        return [{"title": "", "text": value}]
    out = []
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, dict):
            out.append({"title": str(item.get("title") or item.get("name") or ""),
                        "text": str(item.get("text") or item.get("description") or "")})
        else:
            out.append({"title": "", "text": str(item)})
    return out


def village_context(session, code: str) -> dict:
    village = _village(session, code)
    profile = village.profile or {}
    township = session.get(Region, village.parent_code) if village.parent_code else None
    county = session.get(Region, code[:6])
    found = catalog.search(session, county=code, limit=60)["items"]
    tourism = [p for p in found if p["category"] == Category.TOURISM.value]
    products = [p for p in found if p["category"] != Category.TOURISM.value]
    station = session.scalar(select(Station).where(Station.region_code == code,
                                                   Station.active.is_(True)))
    has_pavilion = session.scalar(select(Pavilion.id).where(Pavilion.county_code == code[:6]))
    story = profile.get("story") or ""
    return {"village": {"code": code, "name": village.name, "is_poor": village.is_poor,
                        "township": township.name if township else "",
                        "county": county.name if county else "", "county_code": code[:6]},
            "story": story if isinstance(story, str) else "",
            "scenery": _texts(profile.get("scenery")), "news": _texts(profile.get("news")),
            "products": products, "tourism": tourism,
            "station": {"name": station.name, "phone": station.phone} if station else None,
            "pavilion": code[:6] if has_pavilion else None,
            "categories": [c.value for c in AdviceCategory]}


@router.get("/villages/{code}")
def village_page(code: str, request: Request, session: SessionDep) -> Response:
    return render(request, "village_page.html", actor=current_actor(request, session),
                  form={}, **village_context(session, code))


@router.get("/villages/{code}/qr.svg")
def village_qr(code: str, request: Request, session: SessionDep) -> Response:
    import segno

    village = _village(session, code)
    url = str(request.base_url).rstrip("/") + f"/villages/{code}"
    out = io.BytesIO()
    segno.make(url, error="m").save(out, kind="svg", scale=4, border=4, title=village.name)
    return Response(out.getvalue(), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.post("/villages/{code}/ask")
def ask(code: str, request: Request, session: SessionDep, text: str = Form(""),
        category: str = Form("farming"), contact_name: str = Form(""),
        contact_phone: str = Form(""), csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    _village(session, code)
    try:
        ask_limit.take(request.client.host if request.client else "")
        q = advice.ask(session, code, category=category, text=text, contact_name=contact_name,
                       contact_phone=contact_phone)
    except EcpaError as exc:
        if isinstance(exc, NotFound):
            raise
        form = {"text": text, "category": category, "contact_name": contact_name,
                "contact_phone": contact_phone}
        return render(request, "village_page.html", status=exc.status,
                      actor=current_actor(request, session), form=form, message=exc.message,
                      **village_context(session, code))
    reference = q.reference
    session.commit()  # before the redirect goes out: the next page must find it
    return RedirectResponse(f"/advice/{quote(reference)}?new=1", status_code=303)


@router.get("/advice")
def advice_queue(request: Request, session: SessionDep, answered: str = "no") -> Response:
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    if actor.role not in (Role.COUNTY_OFFICER, Role.ADMINISTRATOR):
        raise PermissionDenied("only the county answers the experts' questions")
    flag = {"no": False, "yes": True}.get(answered)
    found = advice.questions(session, actor, answered=flag)
    return render(request, "village_advice_queue.html", actor=actor, answered=answered,
                  questions=found["items"], total=found["total"], unanswered=found["unanswered"],
                  done=request.query_params.get("done"))


@router.post("/advice/{question_id}/answer")
def answer(question_id: int, request: Request, session: SessionDep, answer: str = Form(""),
           csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    actor = current_actor(request, session)
    if actor is None:
        return signin_required(request)
    q = advice.answer(session, actor, question_id, answer)
    session.commit()  # before the redirect goes out
    return RedirectResponse(f"/advice?answered=yes&done={quote(q.reference)}#q{q.id}",
                            status_code=303)


@router.get("/advice/{reference}")
def advice_page(reference: str, request: Request, session: SessionDep, new: str = "") -> Response:
    view = advice.public_view(session, reference)
    return render(request, "village_advice.html", actor=current_actor(request, session),
                  q=view, new=bool(new))
