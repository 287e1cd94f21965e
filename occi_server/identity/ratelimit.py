"""Request rate limits shared by every worker process: fixed windows counted
in a small SQLite file in the data directory, or, where several front ends
share a PostgreSQL store, in the store (every front end counts the same)."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from occi_server.store import Store

_RULE = re.compile(r"\s*(\d+)\s*/\s*(second|minute|hour|day)\s*")
_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True)
class Rule:
    requests: int
    seconds: int

    @classmethod
    def parse(cls, text: str) -> Rule | None:
        """"120/minute" -> Rule(120, 60); "" -> None (no limit)."""
        if not text.strip():
            return None
        match = _RULE.fullmatch(text)
        if match is None or int(match.group(1)) < 1:
            raise ValueError(f"a rate limit is COUNT/second|minute|hour|day, not {text!r}")
        return cls(int(match.group(1)), _SECONDS[match.group(2)])


class Counters(Protocol):
    def count(self, key: str, window: int) -> int:
        """One more request of `key` in `window`; how many it has now."""

    def forget(self, before: int) -> None:
        """Drop windows that started before `before`."""


class RateLimiter:
    """Fixed windows: `hit` counts a request and says how long to wait when a
    rule's window is full."""

    def __init__(self, counters: Counters) -> None:
        self.counters = counters
        self._hits = 0

    def hit(self, key: str, rule: Rule) -> float | None:
        """Count a request of `key`; None if it is within the rule, else the
        seconds until the window ends."""
        now = time.time()
        window = int(now // rule.seconds) * rule.seconds  # when the window started
        count = self.counters.count(key, window)
        self._hits += 1
        if self._hits % 1000 == 0:  # forget windows that have ended (a day is the longest)
            self.counters.forget(int(now) - 2 * 86400)
        if count > rule.requests:
            return round(window + rule.seconds - now, 1)
        return None


class StoreCounters:
    """Counts in the store (PostgreSQL, shared by several front ends)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def count(self, key: str, window: int) -> int:
        with self.store.transaction(write=True) as repo:
            return repo.count_hit(key, window)

    def forget(self, before: int) -> None:
        with self.store.transaction(write=True) as repo:
            repo.forget_hits(before)


class FileCounters:
    """Counts in a SQLite file of the data directory (one host's workers)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=OFF")  # counters, not records
            connection.execute("CREATE TABLE IF NOT EXISTS hits (key TEXT NOT NULL, "
                               "window INTEGER NOT NULL, count INTEGER NOT NULL, "
                               "PRIMARY KEY (key, window))")
            self._local.connection = connection
        return connection

    def count(self, key: str, window: int) -> int:
        (count,) = self._connection().execute(
            "INSERT INTO hits (key, window, count) VALUES (?, ?, 1) ON CONFLICT (key, window) "
            "DO UPDATE SET count = count + 1 RETURNING count", (key, window)).fetchone()
        return int(count)

    def forget(self, before: int) -> None:
        self._connection().execute("DELETE FROM hits WHERE window < ?", (before,))
