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


SessionDep = Annotated[Session, Depends(get_session)]


def get_actor(session: SessionDep, token: Annotated[str | None, Depends(oauth2)]) -> Actor:
    if not token:
        raise NotAuthenticated("sign in first: POST /api/auth/token, then send "
                               "'Authorization: Bearer <token>'")
    return actor_of(user_for_token(session, token))


ActorDep = Annotated[Actor, Depends(get_actor)]
