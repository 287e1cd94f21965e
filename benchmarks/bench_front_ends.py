"""One front end against two on the same private PostgreSQL, in one run:
creates per second through 8 concurrent clients and the p99 of GET of one
compute, the clients spread over the front ends (simulated backend, each
front end with serve's default workers). On one machine the front ends share
its cores, so the ratio says what the shared store and the takeover
machinery cost, not what a second machine adds.

    .venv/bin/python benchmarks/bench_front_ends.py [--creates 400] [--gets 2000]

Prints a Markdown table and writes it to benchmarks/results/bench_front_ends.md."""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_http import post_compute, report, start, stop
from tests.support.postgres import private_cluster


def creates_per_second(urls: list[str], count: int) -> tuple[float, list[str]]:
    targets = itertools.cycle(urls)
    chosen = [next(targets) for _ in range(count)]
    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        locations = list(pool.map(post_compute, chosen))
    return count / (time.perf_counter() - began), locations


def get_p99_ms(urls: list[str], path: str, count: int) -> float:
    sessions = {url: requests.Session() for url in urls}
    targets = itertools.cycle(urls)

    def one(url: str) -> float:
        began = time.perf_counter()
        sessions[url].get(url + path, timeout=60).raise_for_status()
        return time.perf_counter() - began
    with ThreadPoolExecutor(max_workers=8) as pool:
        samples = sorted(pool.map(one, [next(targets) for _ in range(count)]))
    return statistics.quantiles(samples, n=100)[98] * 1000


def measure(database: str, front_ends: int, creates: int, gets: int) -> tuple[float, float]:
    servers = [start(tempfile.mkdtemp(prefix="occi-fe-bench-"), workers=None,
                     database_url=database) for _ in range(front_ends)]
    urls = [url for _, url in servers]
    try:
        rate, locations = creates_per_second(urls, creates)
        path = locations[0].split("/", 3)[3]
        return rate, get_p99_ms(urls, "/" + path, gets)
    finally:
        for server, _ in servers:
            stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=400)
    parser.add_argument("--gets", type=int, default=2000)
    arguments = parser.parse_args()
    rows = []
    with private_cluster() as database:
        for front_ends in (1, 2):
            rate, p99 = measure(database, front_ends, arguments.creates, arguments.gets)
            rows.append((front_ends, rate, p99))
    (one_rate, one_p99), (two_rate, two_p99) = [(rate, p99) for _, rate, p99 in rows]
    table = ["| front ends | creates/s (8 clients) | GET one compute, p99 |", "|---|---|---|",
             *(f"| {n} | {rate:.0f} | {p99:.1f} ms |" for n, rate, p99 in rows),
             f"| ratio 2/1 | {two_rate / one_rate:.2f} | {two_p99 / one_p99:.2f} |"]
    report("bench_front_ends.md", table)


if __name__ == "__main__":
    main()
