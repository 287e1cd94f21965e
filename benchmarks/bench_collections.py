"""Whole collections over real HTTP (gunicorn, one worker, no default page),
against baselines measured in the same run: GET of 1 000, 10 000 and 100 000
computes in text/plain, text/uri-list and application/occi+json (read afresh
each time, and again with answers kept in memory, the default), beside
`json.dumps` of the same resource documents and a bare Flask handler sending
the same lines on the same gunicorn (one worker); one page of 100
(?page=1&number=100) at each size (its cost should not grow with the
collection); and the worker's peak memory after listing each
size in JSON, compared with the smallest (a collection sent in chunks costs
no more memory for more members).

    .venv/bin/python benchmarks/bench_collections.py [--sizes 1000,10000,100000]

The entities are written into the store before the server starts (as many
creates through HTTP would take minutes). Prints a Markdown table and writes
it to benchmarks/results/bench_collections.md; a ratio past its target is
marked FAILS in the table (not in the tests)."""

from __future__ import annotations

import argparse
import json
import tempfile
import uuid
from pathlib import Path

import requests
from bench_http import (
    bare_server,
    getter,
    medians_in_turns,
    report,
    start,
    stop,
    timed,
    timed_side_by_side,
)

from occi_server.core import Entity
from occi_server.kinds.infrastructure import COMPUTE
from occi_server.store import Store

# The targets: JSON within 5x json.dumps, location lists within 3x writing the lines.
TARGETS = {"application/occi+json": 5.0, "text/plain": 3.0, "text/uri-list": 3.0}


# Every tenth compute carries this template mixin (a filtered page's category).
LARGE = "http://schemas.ogf.org/occi/infrastructure/compute/template/1.1#large"
LARGE_FILTER = 'large; scheme="{}#"; class="mixin"'.format(LARGE.rpartition("#")[0])


def fill(data: Path, count: int) -> None:
    """`count` computes as the simulated backend would have made them, every
    tenth with the `large` template mixin."""
    store = Store(f"sqlite:///{data / 'occi.sqlite3'}")
    store.migrate()
    with store.transaction(write=True) as repo:
        for n in range(count):
            entity_id = str(uuid.uuid4())
            repo.insert(Entity(id=entity_id, kind=COMPUTE.type_id,
                               location=f"/compute/{entity_id}",
                               mixins=[LARGE] if n % 10 == 0 else [],
                               attributes={"occi.core.id": entity_id,
                                           "occi.core.title": f"vm {n}",
                                           "occi.compute.cores": 1, "occi.compute.memory": 1.0,
                                           "occi.compute.state": "active",
                                           "occi.compute.architecture": "x64"}))
    store.dispose()


def peak_rss_mib(master: int) -> float:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmHWM:"))) / 1024


def timed_filtered(url: str, count: int, repeat: int) -> float:
    """Median ms of a GET of the first 100 computes filtered by the `large`
    mixin (a text/occi Category header), of `count`."""
    headers = {"Content-Type": "text/occi", "Category": LARGE_FILTER}
    url += "/compute/?page=1&number=100"
    found = requests.get(url, headers={"Accept": "text/uri-list", **headers}, timeout=120)
    assert len(found.text.split()) == min(100, (count + 9) // 10)
    return timed(url, "text/uri-list", repeat, headers)


def measure(count: int, repeat: int) -> tuple[list[tuple[str, str, str, str]], float]:
    """Each collection read afresh every time (no answers kept), then by a server
    keeping answers (the default: a collection up to 2 MiB is sent from memory
    while nothing changes)."""
    with tempfile.TemporaryDirectory() as directory:
        data = Path(directory)
        fill(data, count)
        fresh, peak = listings(data, count, repeat, "read afresh", answer_cache_bytes="0")
        kept, _ = listings(data, count, repeat, "answers kept")
        media = len(TARGETS)
        rows = [row for pair in zip(fresh[:media], kept[:media], strict=True) for row in pair]
        rows += fresh[media:]  # pages: never kept
    return rows, peak


def listings(data: Path, count: int, repeat: int, how: str, **settings: str
             ) -> tuple[list[tuple[str, str, str, str]], float]:
    rows = []
    server, url = start(str(data), default_page_size="0", **settings)
    try:
        for media in TARGETS:
            body = requests.get(url + "/compute/", headers={"Accept": media},
                                timeout=600).text
            if media.endswith("json"):
                documents = json.loads(body)
                assert len(documents["resources"]) == count
                baseline_name = "json.dumps of the same documents"
                ours, baseline = medians_in_turns([
                    getter(url + "/compute/", {"Accept": media}),
                    lambda d=documents: json.dumps(d, separators=(",", ":"))], repeat)
            else:
                assert len(body.splitlines()) == count
                baseline_name = "a bare handler sending the same lines"
                with bare_server({"list": (body.encode(), media)}) as bare:
                    ours, baseline = timed_side_by_side([url + "/compute/", f"{bare}/list"],
                                                        media, repeat)
            ratio = ours / baseline
            verdict = "" if ratio <= TARGETS[media] else f" FAILS (target {TARGETS[media]:g})"
            rows.append((f"GET {count} computes, {media}, {how}", f"{ours:.1f} ms",
                         f"{baseline_name}: {baseline:.2f} ms", f"{ratio:.1f}{verdict}"))
        page = timed(url + "/compute/?page=1&number=100", "text/uri-list", repeat)
        rows.append((f"GET one page of 100 of {count} computes, text/uri-list",
                     f"{page:.2f} ms", "", ""))
        filtered = timed_filtered(url, count, repeat)
        rows.append((f"GET one page of 100 of {count} computes filtered by a mixin (one in "
                     "ten carries it), text/uri-list", f"{filtered:.2f} ms", "", ""))
        peak = peak_rss_mib(server.pid)
    finally:
        stop(server)
    return rows, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    rows: list[tuple[str, str, str, str]] = []
    peaks = []
    for count in sorted(int(s) for s in args.sizes.split(",")):
        measured, peak = measure(count, args.repeat)
        rows += measured
        peaks.append((count, peak))
    smallest, base_peak = peaks[0]
    for count, peak in peaks:
        rows.append((f"worker peak memory after listing {count} computes (all renderings, "
                     "read afresh)",
                     f"{peak:.0f} MiB", f"after {smallest}: {base_peak:.0f} MiB",
                     f"{peak / base_peak:.2f}"))
    table = ["| case | occi-server | baseline (same run) | ratio |", "|---|---|---|---|"]
    table += [f"| {name} | {ours} | {base} | {ratio} |" for name, ours, base, ratio in rows]
    report("bench_collections.md", table)


if __name__ == "__main__":
    main()
