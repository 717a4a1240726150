"""The advice API: county officers list the questions of their region and answer them;
anyone holding a reference reads its answer."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service

router = ApiRouter(prefix="/api/advice", tags=["advice"])


class AnswerIn(BaseModel):
    answer: str = Field(min_length=1, max_length=service.MAX_ANSWER)


@router.get("")
def list_questions(session: SessionDep, actor: ActorDep, region: str | None = None,
                   answered: bool | None = None, limit: int = 100, offset: int = 0) -> dict:
    return service.questions(session, actor, region, answered=answered, limit=limit,
                             offset=offset)


@router.post("/{question_id}/answer")
def answer(question_id: int, body: AnswerIn, session: SessionDep, actor: ActorDep) -> dict:
    q = service.answer(session, actor, question_id, body.answer)
    return service.officer_view(q, service.region_names(session, {q.village_code}))


@router.get("/{question_id}/contact-phone")
def contact_phone(question_id: int, session: SessionDep, actor: ActorDep) -> dict:
    """The asker's full phone number, to call back (audited)."""
    return {"contact_phone": service.reveal_phone(session, actor, question_id)}


@router.get("/by-reference/{reference}")
def by_reference(reference: str, session: SessionDep) -> dict:
    return service.public_view(session, reference)
