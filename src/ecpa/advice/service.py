"""Use cases of expert advice: anyone asks from a village's page (no sign-in), the
question goes to the county of the village, a county officer answers, the asker reads the
answer with the reference given when asking.

The asker's phone is personal data: stored encrypted with ``ecpa.privacy`` (only the
masked form is kept readable), shown masked, revealed only to an officer of the county and
audited when it is.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..db import utcnow
from ..errors import Conflict, InvalidInput, NotFound
from ..people.access import Actor, audit, require_region, require_role
from ..people.models import Role
from ..privacy import mask_phone, protector
from ..public_input import new_reference
from ..public_input import normalise_reference as _normalise
from ..public_input import phone as phone_field
from ..public_input import text as text_field
from ..regions.codes import scope_prefix
from ..regions.models import Level, Region
from .models import AdviceCategory, AdviceQuestion

ANSWERERS = (Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
MAX_TEXT = 2000
MAX_ANSWER = 4000
MAX_NAME = 60
PHONE_FIELD = "phone"  # the registry's field name: one kind of personal data, one key


def _category(value: AdviceCategory | str) -> AdviceCategory:
    try:
        return AdviceCategory(value)
    except ValueError:
        raise InvalidInput(f"unknown category {value!r}; one of: "
                           + ", ".join(c.value for c in AdviceCategory), field="category") from None


def _village(session: Session, code: str) -> Region:
    region = session.get(Region, code)
    if region is None or region.level is not Level.VILLAGE:
        raise NotFound(f"no village {code}", field="village_code")
    return region


def _new_reference(session: Session, now: datetime) -> str:
    return new_reference("A", now, lambda ref: session.scalar(
        select(AdviceQuestion.id).where(AdviceQuestion.reference == ref)) is not None)


def normalise_reference(value: str) -> str:
    return _normalise("A", value)


def ask(session: Session, village_code: str, *, category: AdviceCategory | str, text: str,
        contact_name: str | None = None, contact_phone: str | None = None,
        now: datetime | None = None) -> AdviceQuestion:
    """Anyone asks, signed in or not; the question goes to the village's county."""
    village = _village(session, village_code)
    now = now or utcnow()
    phone = phone_field(contact_phone)
    q = AdviceQuestion(
        reference=_new_reference(session, now), village_code=village.code,
        county_code=village.code[:6], category=_category(category),
        text=text_field(text, "text", MAX_TEXT, required=True),
        contact_name=text_field(contact_name, "contact_name", MAX_NAME),
        contact_phone_enc=protector().encrypt(phone, PHONE_FIELD) if phone else None,
        contact_phone_masked=mask_phone(phone) if phone else None, asked_at=now)
    session.add(q)
    session.flush()
    return q


def by_reference(session: Session, reference: str) -> AdviceQuestion:
    q = session.scalar(select(AdviceQuestion).where(
        AdviceQuestion.reference == normalise_reference(reference)))
    if q is None:
        raise NotFound(f"no question {reference}", field="reference")
    return q


def _get(session: Session, question_id: int, lock: bool = False) -> AdviceQuestion:
    stmt = select(AdviceQuestion).where(AdviceQuestion.id == question_id)
    q = session.scalar(stmt.with_for_update() if lock else stmt)
    if q is None:
        raise NotFound(f"no question {question_id}", field="question_id")
    return q


def region_names(session: Session, codes: set[str]) -> dict[str, str]:
    if not codes:
        return {}
    return dict(session.execute(select(Region.code, Region.name).where(Region.code.in_(codes))).all())


def public_view(session: Session, reference: str) -> dict:
    """What whoever holds the reference sees: the question and the answer, the phone
    masked, the answering officer not named."""
    q = by_reference(session, reference)
    names = region_names(session, {q.village_code, q.county_code})
    return {"reference": q.reference, "category": q.category.value, "text": q.text,
            "village": {"code": q.village_code, "name": names.get(q.village_code, "")},
            "county": {"code": q.county_code, "name": names.get(q.county_code, "")},
            "contact_name": q.contact_name, "contact_phone": q.contact_phone_masked,
            "asked_at": q.asked_at.isoformat(timespec="minutes"),
            "answer": q.answer, "answered_at":
                q.answered_at.isoformat(timespec="minutes") if q.answered_at else None}


def officer_view(q: AdviceQuestion, names: dict[str, str]) -> dict:
    return {"id": q.id, "reference": q.reference, "category": q.category.value, "text": q.text,
            "village_code": q.village_code, "village": names.get(q.village_code, ""),
            "county_code": q.county_code, "contact_name": q.contact_name,
            "contact_phone": q.contact_phone_masked,
            "asked_at": q.asked_at.isoformat(timespec="minutes"), "answer": q.answer,
            "answered_by": q.answered_by, "answered_at":
                q.answered_at.isoformat(timespec="minutes") if q.answered_at else None}


def questions(session: Session, actor: Actor, region_code: str | None = None, *,
              answered: bool | None = None, limit: int = 100, offset: int = 0) -> dict:
    """The questions of a region (default: the officer's own), unanswered first, oldest
    first among them (who has waited longest is answered next)."""
    require_role(actor, *ANSWERERS)
    region_code = region_code or actor.region_code
    stmt = select(AdviceQuestion)
    if region_code:
        require_region(actor, region_code)
        prefix = scope_prefix(region_code)
        column = AdviceQuestion.county_code if len(prefix) <= 6 else AdviceQuestion.village_code
        stmt = stmt.where(column.startswith(prefix))
    if answered is not None:
        stmt = stmt.where(AdviceQuestion.answered_at.is_not(None) if answered
                          else AdviceQuestion.answered_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = session.scalars(stmt.order_by(AdviceQuestion.answered_at.is_not(None),
                                         AdviceQuestion.asked_at, AdviceQuestion.id)
                           .limit(min(max(limit, 1), 500)).offset(max(offset, 0))).all()
    names = region_names(session, {q.village_code for q in rows})
    return {"total": total, "unanswered": session.scalar(
                select(func.count()).select_from(
                    stmt.where(AdviceQuestion.answered_at.is_(None)).subquery())),
            "items": [officer_view(q, names) for q in rows]}


def answer(session: Session, actor: Actor, question_id: int, text: str,
           now: datetime | None = None) -> AdviceQuestion:
    """An officer of the village's county answers, once.  The same answer again changes
    nothing (a form sent twice); another answer to an answered question is refused."""
    require_role(actor, *ANSWERERS)
    q = _get(session, question_id, lock=True)
    require_region(actor, q.village_code)
    text = text_field(text, "answer", MAX_ANSWER, required=True)
    if q.answered_at is not None:
        if q.answer == text:
            return q
        raise Conflict(f"question {q.reference} was answered by {q.answered_by}",
                       field="answer", question_id=q.id)
    q.answer, q.answered_by, q.answered_at = text, actor.username, now or utcnow()
    session.flush()
    audit(session, actor, "answer", "advice_question", q.id, {"reference": q.reference})
    return q


def reveal_phone(session: Session, actor: Actor, question_id: int) -> str | None:
    """The asker's full phone, to call back: county officers only, audited."""
    require_role(actor, *ANSWERERS)
    q = _get(session, question_id)
    require_region(actor, q.village_code)
    if q.contact_phone_enc is None:
        return None
    audit(session, actor, "read", "advice_question.contact_phone", q.id)
    return protector().decrypt(q.contact_phone_enc, PHONE_FIELD)
