"""Routes: sign in, who am I, users."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from ..api.deps import ActorDep, SessionDep
from ..api.routing import ApiRouter
from .models import Role
from .service import authenticate, create_user, issue_token

router = ApiRouter(prefix="/api", tags=["people"])


@router.post("/auth/token")
def sign_in(session: SessionDep, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> dict:
    """Exchange a username and password for a bearer token."""
    user = authenticate(session, form.username, form.password)
    return {"access_token": issue_token(session, user), "token_type": "bearer",
            "role": user.role.value, "region_code": user.region_code}


@router.get("/me")
def me(actor: ActorDep) -> dict:
    return {"username": actor.username, "role": actor.role.value, "region_code": actor.region_code}


class NewUser(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    password: str = Field(min_length=8, max_length=200)
    role: Role
    region_code: str | None = None
    display_name: str = ""


@router.post("/users", status_code=201)
def new_user(body: NewUser, session: SessionDep, actor: ActorDep) -> dict:
    user = create_user(session, actor, body.username, body.password, body.role,
                       body.region_code, body.display_name)
    return {"id": user.id, "username": user.username, "role": user.role.value,
            "region_code": user.region_code}
