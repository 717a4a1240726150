"""Routes: run detection for a region, the queue of my region (masked), adjudication of
a pair (distinct or merge), the merge records of a household, and undoing a merge."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from ..errors import InvalidInput
from . import service
from .models import CandidateState

router = ApiRouter(prefix="/api/duplicates", tags=["duplicates"])


class FindIn(BaseModel):
    region_code: str | None = Field(default=None, pattern=r"^\d{6}$|^\d{12}$",
                                    description="a province, county, …; default: your scope")


class DistinctIn(BaseModel):
    note: str = Field(default="", max_length=2000)


class MergeIn(BaseModel):
    survivor_household_id: int = Field(description="the household that stays; the other "
                                                   "of the pair is merged into it")
    note: str = Field(default="", max_length=2000)


class UndoIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000, description="why the merge was wrong")


@router.post("/find")
def find(body: FindIn, session: SessionDep, actor: ActorDep) -> dict:
    return service.find_in_region(session, actor, body.region_code)


@router.get("")
def queue(session: SessionDep, actor: ActorDep,
          region_code: Annotated[str | None, Query(pattern=r"^\d{6}$|^\d{12}$")] = None,
          state: Annotated[str, Query(description="pending, distinct, merged, superseded or all")] = "pending",
          page: int = 1, page_size: int = 50) -> dict:
    if state == "all":
        st = None
    else:
        try:
            st = CandidateState(state)
        except ValueError:
            raise InvalidInput(f"unknown state {state!r}", field="state") from None
    total, items = service.list_queue(session, actor, region_code, st, page, page_size)
    return {"total": total, "page": page, "items": items}


@router.get("/{candidate_id}")
def one(candidate_id: int, session: SessionDep, actor: ActorDep) -> dict:
    service.require_role(actor, *service.DECIDERS)
    c = service.get_candidate(session, actor, candidate_id)
    service.audit(session, actor, "duplicates.read", "duplicate_candidate", c.id)
    return service.candidate_view(session, actor, c)


@router.post("/{candidate_id}/distinct")
def distinct(candidate_id: int, body: DistinctIn, session: SessionDep, actor: ActorDep) -> dict:
    return service.mark_distinct(session, actor, candidate_id, body.note)


@router.post("/{candidate_id}/merge")
def merge(candidate_id: int, body: MergeIn, session: SessionDep, actor: ActorDep) -> dict:
    service.require_role(actor, *service.DECIDERS)
    c = service.get_candidate(session, actor, candidate_id)
    pair = (c.household_a_id, c.household_b_id)
    if body.survivor_household_id not in pair:
        raise InvalidInput(f"survivor_household_id must be one of the pair {list(pair)}",
                           field="survivor_household_id")
    merged = pair[1] if body.survivor_household_id == pair[0] else pair[0]
    return service.merge(session, actor, body.survivor_household_id, merged, body.note, c.id)


@router.get("/merges/{household_id}")
def merges(household_id: int, session: SessionDep, actor: ActorDep) -> list[dict]:
    return service.merges_of(session, actor, household_id)


@router.post("/merges/{merge_id}/undo")
def undo_merge(merge_id: int, body: UndoIn, session: SessionDep, actor: ActorDep) -> dict:
    """Undo a merge: what moved goes back, the merged household is live again and its
    pairs pending; the record stays, marked undone."""
    return service.unmerge(session, actor, merge_id, body.reason)
