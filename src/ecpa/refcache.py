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

    def get(self, session: Session, key: object, load: Callable[[], T]) -> T:
        seconds = get_settings().reference_cache_seconds
        if seconds <= 0:
            return load()
        k = (str(session.get_bind().url), key)
        with self._lock:
            if self._data is None or self._data.ttl != seconds:
                # time.monotonic looked up at each call, so that tests can move the clock.
                self._data = TTLCache(MAX_ENTRIES, seconds, timer=lambda: time.monotonic())
            hit = self._data.get(k, _MISSING)
        if hit is not _MISSING:
            return hit  # type: ignore[return-value]
        value = load()  # outside the lock: it queries the database
        with self._lock:
            if self._data is not None:
                self._data[k] = value
        return value

    def clear(self) -> None:
        with self._lock:
            if self._data is not None:
                self._data.clear()

    def _after_flush(self, session: Session, _context) -> None:
        if self._data and any(isinstance(obj, self._models)
                              for part in (session.new, session.dirty, session.deleted)
                              for obj in part):
            self.clear()


_MISSING = object()
