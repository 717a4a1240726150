"""Sign-in for the web pages: a session cookie (signed by Starlette's SessionMiddleware)
holding an API token of the same table as the API's bearer tokens, so that one set of
role and region rules serves both; a CSRF token per session checked on every form post;
sign-in attempts limited per address and username."""

from __future__ import annotations

import secrets
import threading
import time
from collections import defaultdict, deque

from fastapi import Request
from sqlalchemy.orm import Session

from ..errors import EcpaError, NotAuthenticated
from ..people.access import Actor
from ..people.service import actor_of, user_for_token

ATTEMPTS, WINDOW_S = 5, 300  # five failed sign-ins in five minutes, then wait


class TooManyAttempts(EcpaError):
    status = 429
    code = "too_many_attempts"


class BadCsrf(EcpaError):
    status = 403
    code = "csrf"


class _Limiter:
    """Failed sign-ins per (address, username), in this process."""

    def __init__(self):
        self._fails: dict[tuple[str, str], deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, key: tuple[str, str]) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._fails[key]
            while q and now - q[0] > WINDOW_S:
                q.popleft()
            if len(q) >= ATTEMPTS:
                raise TooManyAttempts(f"too many failed sign-ins; try again in "
                                      f"{int(WINDOW_S - (now - q[0])) + 1} s")

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails[key].append(time.monotonic())

    def clear(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._fails.pop(key, None)


limiter = _Limiter()


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not submitted or not secrets.compare_digest(expected, submitted):
        raise BadCsrf("the form has expired or did not come from this site; reload the page")


def current_actor(request: Request, session: Session) -> Actor | None:
    token = request.session.get("token")
    if not token:
        return None
    try:
        return actor_of(user_for_token(session, token))
    except NotAuthenticated:
        request.session.pop("token", None)
        return None
