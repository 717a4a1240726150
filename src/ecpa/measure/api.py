"""HTTP routes of measurement: a region's assessment from the live database, and the
monitoring proposals it writes back."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service
from .config import load_config

router = ApiRouter(prefix="/api/measure", tags=["measurement"])


@router.get("/regions/{code}")
def assess_region(code: str, session: SessionDep, actor: ActorDep,
                  year: Annotated[int, Query(ge=1990, le=2100)],
                  profile: str = "china",
                  k: Annotated[str | None, Query(description="cutoffs, e.g. 1/3,1/2")] = None) -> dict:
    """Income poverty, guarantees, the multidimensional index by level and subgroup,
    and the households at risk, for a county or a region within it."""
    cfg = load_config(None, year=year, profile=profile, k=k.split(",") if k else None)
    result, at_risk = service.assess_region(session, actor, code, year, cfg)
    return service.summary(result, at_risk, code, year)


@router.post("/regions/{code}/proposals")
def propose(code: str, session: SessionDep, actor: ActorDep,
            year: Annotated[int, Query(ge=1990, le=2100)]) -> dict:
    """Assess the region and write each household at risk as an open monitoring proposal
    (idempotent: a household already proposed for the year and category is skipped)."""
    result, at_risk = service.assess_region(session, actor, code, year)
    added = service.propose_monitoring(session, actor, at_risk, year)
    return {"region": code, "year": year, "at_risk": len(at_risk), "added": added}


@router.get("/regions/{code}/proposals")
def proposals(code: str, session: SessionDep, actor: ActorDep,
              year: Annotated[int | None, Query(ge=1990, le=2100)] = None) -> list[dict]:
    return service.list_proposals(session, actor, code, year)
