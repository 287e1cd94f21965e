"""Request rate limits shared by every worker process: fixed windows counted
in a small SQLite file in the data directory."""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

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


class RateLimiter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._hits = 0

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

    def hit(self, key: str, rule: Rule) -> float | None:
        """Count a request of `key`; None if it is within the rule, else the
        seconds until the window ends."""
        now = time.time()
        window = int(now // rule.seconds) * rule.seconds  # when the window started
        connection = self._connection()
        (count,) = connection.execute(
            "INSERT INTO hits (key, window, count) VALUES (?, ?, 1) ON CONFLICT (key, window) "
            "DO UPDATE SET count = count + 1 RETURNING count", (key, window)).fetchone()
        self._hits += 1
        if self._hits % 1000 == 0:  # forget windows that have ended (a day is the longest)
            connection.execute("DELETE FROM hits WHERE window < ?", (int(now) - 2 * 86400,))
        if count > rule.requests:
            return round(window + rule.seconds - now, 1)
        return None
