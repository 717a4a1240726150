"""Reference data that every checkout reads and officers change rarely (delivery zones,
stations, campaigns), kept in memory for a few seconds.

Each entry is keyed by the database as well, so that one process serving several
databases (the tests) never mixes them.  Any flush in this process that adds, changes or
deletes a row of a watched model empties the cache at once; another process sees the
change after at most ``reference_cache_seconds`` (0 turns the cache off)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from .config import get_settings

T = TypeVar("T")


class ReferenceCache:
    def __init__(self, name: str, *models: type) -> None:
        self.name = name
        self._models = models
        self._data: dict[tuple[str, object], tuple[float, object]] = {}
        event.listen(Session, "after_flush", self._after_flush)

    def get(self, session: Session, key: object, load: Callable[[], T]) -> T:
        seconds = get_settings().reference_cache_seconds
        if seconds <= 0:
            return load()
        k = (str(session.get_bind().url), key)
        hit = self._data.get(k)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[return-value]
        value = load()
        self._data[k] = (now + seconds, value)
        return value

    def clear(self) -> None:
        self._data.clear()

    def _after_flush(self, session: Session, _context) -> None:
        if self._data and any(isinstance(obj, self._models)
                              for part in (session.new, session.dirty, session.deleted)
                              for obj in part):
            self._data.clear()
