"""Request-scoped dependencies: the database session and the signed-in actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from ..db import session_scope
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


def get_actor(token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    """The signed-in user, read in a short session of its own: a route that works in its
    own transactions (checkout, payment) must not also hold the request's connection."""
    if not token:
        raise NotAuthenticated("sign in first: POST /api/auth/token, then send "
                               "'Authorization: Bearer <token>'")
    with session_scope() as session:
        return actor_of(user_for_token(session, token))


ActorDep = Annotated[Actor, Depends(get_actor)]
