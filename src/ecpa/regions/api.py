"""Routes: the region tree."""

from __future__ import annotations

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from . import service
from .models import Region

router = ApiRouter(prefix="/api/regions", tags=["regions"])


def _view(r: Region) -> dict:
    return {"code": r.code, "name": r.name, "level": r.level.value, "parent_code": r.parent_code,
            "is_poor": r.is_poor, "longitude": r.longitude, "latitude": r.latitude,
            "profile": r.profile}


@router.get("")
def top_level(session: SessionDep, _: ActorDep) -> list[dict]:
    """The provinces."""
    return [_view(r) for r in service.children(session, None)]


@router.get("/{code}")
def region(code: str, session: SessionDep, _: ActorDep) -> dict:
    r = service.get_region(session, code)
    return {**_view(r), "children": [_view(c) for c in service.children(session, code)]}
