"""The ``Idempotency-Key`` header on write requests: the first response to a key is kept
and returned again for a repeat; a repeat while the first is still running gets 409; the
same key with a different request gets 422.  Keys are per caller (the credentials sent),
so two users cannot collide.  A 5xx is not kept, so the client may retry it."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

from sqlalchemy import (
    DateTime,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from ..db import Base, get_engine, session_scope, utcnow

WRITES = {"POST", "PUT", "PATCH", "DELETE"}
ABANDONED = timedelta(minutes=2)  # a request running longer than this has died


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_record"
    __table_args__ = (UniqueConstraint("caller", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    caller: Mapped[str] = mapped_column(String(64))  # hash of the credentials
    key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))  # running, done
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    media_type: Mapped[str | None] = mapped_column(String(100), default=None)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "detail": {"header": "Idempotency-Key"}},
                        status_code=status)


_CLAIM = insert(IdempotencyRecord.__table__)


def _begin(caller: str, key: str, request_hash: str):
    """Claim the key (committed at once, so that a concurrent repeat sees it)."""
    try:
        with get_engine().begin() as conn:  # one plain INSERT: every keyed write pays it
            conn.execute(_CLAIM, {"caller": caller, "key": key, "request_hash": request_hash,
                                  "state": "running", "created_at": utcnow()})
        return None
    except IntegrityError:
        with session_scope() as s:
            row = s.scalar(select(IdempotencyRecord).where(IdempotencyRecord.caller == caller,
                                                           IdempotencyRecord.key == key))
            if row is None:  # released meanwhile (its request failed): the caller may retry
                return _error(409, "conflict", "a request with this Idempotency-Key just failed; retry")
            if row.state == "running":
                if row.created_at < utcnow() - ABANDONED:
                    # Its server died mid-request: the key is free again — for one taker
                    # only (compare and set on the old start time).
                    taken = s.execute(update(IdempotencyRecord).where(
                        IdempotencyRecord.id == row.id, IdempotencyRecord.state == "running",
                        IdempotencyRecord.created_at == row.created_at)
                        .values(request_hash=request_hash, created_at=utcnow()))
                    if taken.rowcount == 1:
                        return None
                return _error(409, "conflict", "a request with this Idempotency-Key is in progress")
            if row.request_hash != request_hash:
                return _error(422, "invalid_input",
                              "this Idempotency-Key was used for a different request")
            return Response(row.body, status_code=row.status_code, media_type=row.media_type,
                            headers={"Idempotent-Replayed": "true"})


def _finish(caller: str, key: str, response: Response | None, body: bytes) -> None:
    with session_scope() as s:
        q = (IdempotencyRecord.caller == caller) & (IdempotencyRecord.key == key)
        if response is None or response.status_code >= 500:
            s.execute(delete(IdempotencyRecord).where(q))
            return
        s.execute(update(IdempotencyRecord).where(q).values(
            state="done", status_code=response.status_code, body=body,
            media_type=response.media_type or response.headers.get("content-type")))


class IdempotencyMiddleware:
    """Plain ASGI (not Starlette's BaseHTTPMiddleware, which costs every request a task
    group and a re-streamed body): requests without the header pass straight through."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in WRITES:
            return await self.app(scope, receive, send)
        key = _header(scope, b"idempotency-key")
        if key is None:
            return await self.app(scope, receive, send)
        if not 0 < len(key) <= 200:
            return await _error(422, "invalid_input",
                                "Idempotency-Key must be 1 to 200 characters")(scope, receive, send)
        client = scope.get("client")
        credentials = _header(scope, b"authorization") or (client[0] if client else "")
        caller = hashlib.sha256(credentials.encode()).hexdigest()
        raw = await _read_body(receive)
        query = scope.get("query_string", b"").decode("latin-1")
        request_hash = hashlib.sha256(json.dumps(
            [scope["method"], scope["path"], query, raw.decode("utf-8", "replace")]
        ).encode()).hexdigest()
        replay = await run_in_threadpool(_begin, caller, key, request_hash)
        if replay is not None:
            return await replay(scope, receive, send)

        sent = False

        async def replay_body():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()  # after the body: wait for the client to disconnect

        start: dict | None = None
        chunks: list[bytes] = []
        complete = False

        async def keep(message):
            nonlocal start, complete
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                complete = not message.get("more_body", False)

        try:
            await self.app(scope, replay_body, keep)
        finally:
            # A response not produced in full is not kept: the key is freed for a retry.
            done = start is not None and complete
            response = _Kept(start) if done else None
            await run_in_threadpool(_finish, caller, key, response, b"".join(chunks))
        await send(start)
        await send({"type": "http.response.body", "body": b"".join(chunks), "more_body": False})


class _Kept:
    """What ``_finish`` keeps of a response: its status and media type."""

    def __init__(self, start: dict):
        self.status_code = start["status"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start.get("headers", [])}
        self.media_type = headers.get("content-type")
        self.headers = headers


def _header(scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return v.decode("latin-1")
    return None


async def _read_body(receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)
