"""Rate-limit counters in the store, shared by every front end on it."""

from __future__ import annotations

from sqlalchemy import delete

from occi_server.store.records.base import Records
from occi_server.store.records.generation import UPSERT
from occi_server.store.tables import rate_hits


class RateRecords(Records):
    def count_hit(self, key: str, window: int) -> int:
        """One more request of `key` in the window starting at `window` (epoch
        seconds); how many it has now."""
        insert = UPSERT[self.connection.dialect.name](rate_hits).values(
            key=key, window_start=window, count=1)
        return int(self.connection.execute(insert.on_conflict_do_update(
            index_elements=[rate_hits.c.key, rate_hits.c.window_start],
            set_={"count": rate_hits.c.count + 1}).returning(rate_hits.c.count)).scalar_one())

    def forget_hits(self, before: int) -> None:
        """Drop the counts of windows that started before `before`."""
        self.connection.execute(delete(rate_hits).where(rate_hits.c.window_start < before))
