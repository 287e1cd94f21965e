"""What listing the newest jobs (GET /jobs/, the web overview) costs as the
history of jobs grows: 1 000 jobs (the baseline, same run), then 10 000,
100 000 and 300 000 (written into the store first; every create, action and
delete adds one), the 100 newest for an operator and for one tenant of fifty,
on SQLite, read through the store as the API does.

    .venv/bin/python benchmarks/bench_jobs.py

Prints the median milliseconds of each listing and its ratio to the
baseline's, and writes the table to benchmarks/results/bench_jobs.md."""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench_http import report
from sqlalchemy import insert

from occi_server.store import Store
from occi_server.store.records.base import Scope
from occi_server.store.tables import jobs

SIZES = (1000, 10000, 100000, 300000)
TENANTS = 50


def listing_ms(store: Store, scope: Scope | None) -> float:
    samples = []
    for _ in range(7):
        started = time.perf_counter()
        with store.transaction(write=False, scope=scope) as repo:
            repo.jobs(limit=100)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        store = Store(f"sqlite:///{directory}/jobs.sqlite3")
        store.migrate()
        start, held, rows = datetime.now(UTC) - timedelta(days=30), 0, []
        for size in SIZES:
            history = [{"id": uuid.uuid4().hex, "entity_id": str(uuid.uuid4()),
                        "location": "/compute/x", "operation": "creating", "state": "done",
                        "progress": "finished", "error": None,
                        "created": start + timedelta(seconds=number), "updated": start,
                        "tenant": f"t{number % TENANTS}"} for number in range(held, size)]
            with store.engine.begin() as connection:
                for first in range(0, len(history), 5000):
                    connection.execute(insert(jobs), history[first:first + 5000])
            held = size
            rows.append((size, listing_ms(store, None), listing_ms(store, Scope("t7", "bench"))))
        store.dispose()
    operator, tenant = rows[0][1], rows[0][2]
    report("bench_jobs.md", [
        "| jobs | operator's listing, ms | of the 1 000's | a tenant's, ms | of the 1 000's |",
        "|---|---|---|---|---|",
        *(f"| {size} | {ours:.2f} | {ours / operator:.2f} | {theirs:.2f} | "
          f"{theirs / tenant:.2f} |" for size, ours, theirs in rows)])


if __name__ == "__main__":
    main()
