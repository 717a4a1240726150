"""HTTP routes of the model recommender."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service

router = ApiRouter(prefix="/api/recommend", tags=["evaluate"])


class ProfileIn(BaseModel):
    profile: dict = Field(description="a county profile (see recommend/examples.toml)")
    top: int = Field(3, ge=1, le=20)


@router.get("/knowledge")
def knowledge(actor: ActorDep) -> dict:
    """The models and arrangements of the knowledge base, with what each needs."""
    kb = service.knowledge()
    return {group: [{"key": m.key, "name": m.name, "name_zh": m.name_zh, "source": m.source,
                     "summary": m.summary, "needs": m.needs, "requires": list(m.requires)}
                    for m in models] for group, models in kb.items()}


@router.post("")
def recommend(body: ProfileIn, actor: ActorDep) -> dict:
    return service.recommend(body.profile, top=body.top)


@router.get("/counties/{county_code}")
def county(county_code: str, session: SessionDep, actor: ActorDep, top: int = 3) -> dict:
    """Which models suit this county, why, and the gaps to close first."""
    return service.recommend_county(session, actor, county_code, top)
