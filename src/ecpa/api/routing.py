"""A router that rejects a request outside its routes' paths at once.

FastAPI tries every route of every included router in turn, a regular expression each:
with some 400 routes, finding ``/api/market/checkout`` cost a fifth of the server's time
a checkout.  A path that does not begin with the literal start of any of a router's
routes (the part before the first ``{``) cannot match any of them and need not be tried."""

from __future__ import annotations

from fastapi import APIRouter
from starlette._utils import get_route_path
from starlette.routing import Match


class ApiRouter(APIRouter):
    _heads: tuple[str, ...] = ()
    _heads_of: int = -1  # the number of routes the heads were computed for

    def matches(self, scope):
        if scope.get("type") in ("http", "websocket"):
            if len(self.routes) != self._heads_of:
                self._heads = tuple({getattr(r, "path", "").split("{", 1)[0] for r in self.routes})
                self._heads_of = len(self.routes)
            if not get_route_path(scope).startswith(self._heads):
                return Match.NONE, {}
        return super().matches(scope)
