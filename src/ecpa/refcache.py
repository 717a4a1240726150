"""Reference data that every checkout reads and officers change rarely (delivery zones,
stations, campaigns), kept in memory for a few seconds.

Each entry is keyed by the database as well, so that one process serving several
databases (the tests) never mixes them.  Any flush in this process that adds, changes or
deletes a row of a watched model empties the cache at once; another process sees the
change after at most ``reference_cache_seconds`` (0 turns the cache off).  At most
``MAX_ENTRIES`` entries are kept (a route per village shipped to, say)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import TypeVar

from cachetools import TTLCache
from sqlalchemy import event
from sqlalchemy.orm import Session

from .config import get_settings

T = TypeVar("T")
MAX_ENTRIES = 50_000


class ReferenceCache:
    def __init__(self, name: str, *models: type) -> None:
        self.name = name
        self._models = models
        self._lock = threading.Lock()  # TTLCache is not safe across the server's threads
        self._data: TTLCache | None = None
        event.listen(Session, "after_flush", self._after_flush)
        _every.add(self)

    def get(self, session: Session, key: object, load: Callable[[], T]) -> T:
        url = str(session.get_bind().url)
        hit = self.peek(url, key)
        if hit is not MISSING:
            return hit  # type: ignore[return-value]
        value = load()  # outside the lock: it queries the database
        self.put(url, key, value)
        return value

    def peek(self, url: str, key: object) -> object:
        """The entry kept for ``key`` of the database at ``url``, or ``MISSING`` (also
        when the cache is off): for callers that cannot query synchronously."""
        seconds = get_settings().reference_cache_seconds
        if seconds <= 0:
            return MISSING
        with self._lock:
            if self._data is None or self._data.ttl != seconds:
                # time.monotonic looked up at each call, so that tests can move the clock.
                self._data = TTLCache(MAX_ENTRIES, seconds, timer=lambda: time.monotonic())
            return self._data.get((url, key), MISSING)

    def put(self, url: str, key: object, value: object) -> None:
        with self._lock:
            if self._data is not None:
                self._data[(url, key)] = value

    def clear(self) -> None:
        with self._lock:
            if self._data is not None:
                self._data.clear()

    def _after_flush(self, session: Session, _context) -> None:
        if self._data and any(isinstance(obj, self._models)
                              for part in (session.new, session.dirty, session.deleted)
                              for obj in part):
            self.clear()


MISSING = object()
_every: weakref.WeakSet[ReferenceCache] = weakref.WeakSet()


def clear_all() -> None:
    """Empty every cache: for a database emptied behind the ORM's back (the tests'
    schema reset), where no flush tells them."""
    for cache in list(_every):
        cache.clear()
