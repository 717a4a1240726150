"""HTTP routes of data quality: an officer's run over a region, a village's worklist,
and the rule library."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service
from .engine import load_rules

router = ApiRouter(prefix="/api/quality", tags=["data quality"])


class RunIn(BaseModel):
    region: str = Field(description="county, township or village code")
    year: int | None = Field(None, ge=2013, le=2100, description="data year (default: latest income year)")


@router.post("/runs", status_code=201)
def run(body: RunIn, session: SessionDep, actor: ActorDep) -> dict:
    """Run every rule over the region and update its villages' worklists (items no
    longer found are marked resolved)."""
    record, result = service.run_region(session, actor, body.region, body.year)
    return service.run_view(record, result)


@router.get("/worklist")
def worklist(session: SessionDep, actor: ActorDep,
             village: Annotated[str, Query(description="12-digit village code")],
             state: Annotated[str, Query(pattern="^(open|resolved|all)$")] = "open") -> dict:
    """A village's worklist; a village cadre sees only its own village."""
    return service.worklist(session, actor, village, state)


@router.get("/rules")
def rules() -> list[dict]:
    """The rule library: code, severity, field, messages and query."""
    return [{"code": r.code, "severity": r.severity, "level": r.level, "field": r.field,
             "message_zh": r.message_zh, "message_en": r.message_en, "sql": r.sql.strip()}
            for r in load_rules()]
