"""Request-scoped dependencies: the database session and the signed-in actor."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Annotated

from cachetools import TTLCache
from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from ..config import get_settings
from ..db import session_scope, utcnow
from ..errors import NotAuthenticated
from ..people.access import Actor
from ..people.service import actor_of, user_for_token

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


# Committed when the route function returns, before the response is sent: a client that
# follows a redirect must find what the request wrote, and a failed commit must not be
# answered with a success.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


class _TokenCache:
    """Checked tokens kept for ``token_cache_seconds`` (never past their expiry), so that
    a busy buyer's every request does not cost a database round trip.  Keyed by the
    token's hash; the lock because sync routes run in a thread pool."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: TTLCache | None = None

    def get(self, key: str) -> Actor | None:
        with self._lock:
            hit = self._cache.get(key) if self._cache is not None else None
        if hit is None or hit[1] <= utcnow():
            return None
        return hit[0]

    def put(self, key: str, actor: Actor, expires_at) -> None:
        seconds = get_settings().token_cache_seconds
        if seconds <= 0:
            return
        with self._lock:
            if self._cache is None or self._cache.ttl != seconds:
                self._cache = TTLCache(maxsize=100_000, ttl=seconds)
            self._cache[key] = (actor, expires_at)

    def clear(self) -> None:
        with self._lock:
            self._cache = None


tokens = _TokenCache()


async def get_actor(token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    """The signed-in user, read in a short session of its own: a route that works in its
    own transactions (checkout, payment) must not also hold the request's connection.
    A token checked in the last few seconds is answered from memory, on the event loop;
    otherwise the database is asked from a worker thread."""
    if not token:
        raise NotAuthenticated("sign in first: POST /api/auth/token, then send "
                               "'Authorization: Bearer <token>'")
    actor = cached_actor(token)
    if actor is None:
        actor, expires_at = await run_in_threadpool(_actor_for_token, token)
        tokens.put(_token_key(token), actor, expires_at)
    return actor


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def cached_actor(token: str) -> Actor | None:
    """The actor of a token checked in the last few seconds, or None."""
    return tokens.get(_token_key(token))


def _actor_for_token(token: str):
    with session_scope() as session:
        user, expires_at = user_for_token(session, token, with_expiry=True)
        return actor_of(user), expires_at


ActorDep = Annotated[Actor, Depends(get_actor)]
