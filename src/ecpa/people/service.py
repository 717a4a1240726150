"""Users, passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..config import get_settings
from ..db import utcnow
from ..errors import Conflict, InvalidInput, NotAuthenticated
from ..regions.models import Level, Region
from .access import Actor, require_region, require_role
from .models import ApiToken, Role, User

_hasher = PasswordHasher()

# The level of region each role is scoped to; None = nationwide.
ROLE_SCOPE = {
    Role.ADMINISTRATOR: None,
    # The poverty alleviation offices: a township's, a county's, a prefecture's or a
    # province's (each acts at its own level in the targeting cases).
    Role.COUNTY_OFFICER: {Level.PROVINCE, Level.PREFECTURE, Level.COUNTY, Level.TOWNSHIP},
    Role.VILLAGE_CADRE: {Level.VILLAGE},
    Role.STATION_KEEPER: {Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE},  # its station's region
    Role.COOPERATIVE_MANAGER: {Level.COUNTY, Level.TOWNSHIP, Level.VILLAGE},
    Role.ENTERPRISE: None,
    Role.CONSUMER: None,
    Role.ANALYST: None,
}


def actor_of(user: User) -> Actor:
    return Actor(username=user.username, role=user.role, region_code=user.region_code,
                 user_id=user.id)


def create_user(
    session: Session, actor: Actor, username: str, password: str, role: Role,
    region_code: str | None = None, display_name: str = "",
) -> User:
    require_role(actor, Role.ADMINISTRATOR, Role.COUNTY_OFFICER)
    if actor.role is Role.COUNTY_OFFICER and role in (Role.ADMINISTRATOR, Role.COUNTY_OFFICER):
        raise InvalidInput("a county officer may create only village and cooperative accounts")
    if len(password) < 8:
        raise InvalidInput("password must have at least 8 characters", field="password")
    levels = ROLE_SCOPE[role]
    if levels is not None:
        if not region_code:
            raise InvalidInput(f"role {role.value} needs a region", field="region_code")
        region = session.get(Region, region_code)
        if region is None:
            raise InvalidInput(f"unknown region {region_code}", field="region_code")
        if region.level not in levels:
            names = "/".join(sorted(lv.value for lv in levels))
            raise InvalidInput(
                f"role {role.value} is scoped to a {names}, {region_code} is a {region.level.value}",
                field="region_code",
            )
    if region_code:
        require_region(actor, region_code)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"user {username!r} exists", field="username")
    user = User(username=username, password_hash=_hasher.hash(password), role=role,
                region_code=region_code, display_name=display_name or username)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username, User.active.is_(True)))
    try:
        if user is None:
            raise VerifyMismatchError
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        raise NotAuthenticated("wrong username or password") from None
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User) -> str:
    token = secrets.token_urlsafe(32)
    session.execute(delete(ApiToken).where(ApiToken.expires_at < utcnow()))
    session.add(ApiToken(token_hash=_token_hash(token), user_id=user.id,
                         expires_at=utcnow() + timedelta(hours=get_settings().token_hours)))
    return token


def user_for_token(session: Session, token: str, with_expiry: bool = False):
    """The token's user (and, ``with_expiry``, when the token expires): one query."""
    row = session.execute(select(User, ApiToken.expires_at).join(ApiToken, ApiToken.user_id == User.id)
                          .where(ApiToken.token_hash == _token_hash(token))).first()
    if row is None or row[1] < utcnow():
        raise NotAuthenticated("token unknown or expired; sign in again")
    user, expires_at = row
    if not user.active:
        raise NotAuthenticated("account disabled")
    return (user, expires_at) if with_expiry else user
