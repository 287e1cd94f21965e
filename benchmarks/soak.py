"""Load and soak: concurrent clients create, read, act on, update and delete
computes on a real `occi-server serve` (3 workers, simulated backend) on
loopback for a bounded time. Afterwards: no 5xx, the stored entities are
exactly the ones the clients kept (none lost, none doubled), and the
workers' memory and open file descriptors did not grow after warm-up.

    .venv/bin/python benchmarks/soak.py [--seconds 300] [--clients 8]

tests/integration/test_soak.py runs it for a shorter time."""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from occi_server.kinds.tenancy import QUOTAS

SERVER = Path(sys.executable).parent / "occi-server"
KIND = 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'
ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
# Checked on every create (the tenant's usage must come out as what it holds),
# never reached: the load is the point of the run.
QUOTAS_IN_FORCE = json.dumps({"default": dict.fromkeys(QUOTAS, 10**9)})


@dataclass
class Report:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)
    kept: set[str] = field(default_factory=set)
    listed: list[str] = field(default_factory=list)
    # After the load: the computes as stored, and the tenant's usage as its quotas count it.
    stored: list[dict[str, Any]] = field(default_factory=list)
    usage: dict[str, float] = field(default_factory=dict)
    warm: dict[str, int] = field(default_factory=dict)
    end: dict[str, int] = field(default_factory=dict)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _workers(master: int) -> list[int]:
    return [int(pid) for pid in
            Path(f"/proc/{master}/task/{master}/children").read_text().split()]


def resources(master: int) -> dict[str, int]:
    """Resident KiB and open descriptors of all workers together."""
    rss = fds = 0
    for pid in _workers(master):
        status = Path(f"/proc/{pid}/status").read_text()
        rss += int(next(line.split()[1] for line in status.splitlines()
                        if line.startswith("VmRSS:")))
        fds += len(os.listdir(f"/proc/{pid}/fd"))
    return {"rss_kib": rss, "fds": fds}


def _client(url: str, deadline: float, report: Report, lock: threading.Lock,
            seed: int) -> None:
    rng, session = random.Random(seed), requests.Session()

    def call(method: str, path: str, **kwargs) -> requests.Response:
        response = session.request(method, path if path.startswith("http") else url + path,
                                   timeout=60, **kwargs)
        with lock:
            report.requests += 1
            report.statuses[response.status_code] += 1
        return response

    mine: list[str] = []
    while time.monotonic() < deadline:
        created = call("POST", "/compute/", headers={"Content-Type": "text/plain"},
                       data=f'{KIND}\nX-OCCI-Attribute: occi.core.title="soak {seed}"\n')
        if created.status_code == 201:
            mine.append(created.headers["Location"])
        if not mine:
            continue
        target = rng.choice(mine)
        call("GET", target, headers={"Accept": "application/occi+json"})
        term = rng.choice(("stop", "start", "restart"))
        call("POST", f"{target}?action={term}", headers={"Content-Type": "text/plain"},
             data=f'Category: {term}; scheme="{ACTION}"; class="action"\n')
        call("POST", target, headers={"Content-Type": "text/plain"},
             data=f'X-OCCI-Attribute: occi.core.title="renamed {rng.random():.6f}"\n')
        if rng.random() < 0.5:
            victim = mine.pop(rng.randrange(len(mine)))
            if call("DELETE", victim).status_code != 200:
                mine.append(victim)
    with lock:
        report.kept.update(mine)


def _pages(collection: str, media_type: str) -> Iterator[requests.Response]:
    """A collection's pages in a rendering (each names the next one)."""
    page: str | None = collection
    while page is not None:
        listing = requests.get(page, headers={"Accept": media_type}, timeout=120)
        yield listing
        page = listing.headers.get("X-OCCI-Next-Page")


def soak(url: str, master: int, seconds: float, clients: int) -> Report:
    report, lock = Report(), threading.Lock()
    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(max_workers=clients + 1) as pool:
        futures = [pool.submit(_client, url, deadline, report, lock, n) for n in range(clients)]
        time.sleep(seconds / 4)  # warmed up: caches filled, connections pooled
        report.warm = resources(master)
        for future in futures:
            future.result()
    report.end = resources(master)
    for listing in _pages(url + "/compute/", "text/uri-list"):
        report.listed.extend(line for line in listing.text.split() if line)
    for listing in _pages(url + "/compute/", "application/occi+json"):
        report.stored.extend(listing.json().get("resources", []))
    quotas = requests.get(url + "/api/quota", timeout=60).json()["quotas"]
    report.usage = {name: quota["usage"] for name, quota in quotas.items()}
    return report


class Service:
    """`occi-server serve` with 3 workers and the simulated backend."""

    def __init__(self, data_dir: str, workers: int = 3) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [str(SERVER), "serve", "--listen", f"127.0.0.1:{self.port}", "--data-dir",
             data_dir, "--workers", str(workers)],
            env={**os.environ, "OCCI_BACKEND": "simulated", "OCCI_LOG_LEVEL": "warning",
                 "OCCI_QUOTAS": QUOTAS_IN_FORCE},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/-/", timeout=5)
                return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("occi-server did not answer")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        service = Service(data)
        try:
            report = soak(service.url, service.process.pid, args.seconds, args.clients)
        finally:
            service.stop()
    duplicates = len(report.listed) - len(set(report.listed))
    print(f"{report.requests} requests in {args.seconds:.0f} s by {args.clients} clients "
          f"({report.requests / args.seconds:.0f}/s); statuses {dict(report.statuses)}")
    print(f"5xx: {report.server_errors}; kept {len(report.kept)}, listed "
          f"{len(report.listed)}, lost {len(report.kept - set(report.listed))}, "
          f"unexpected {len(set(report.listed) - report.kept)}, doubled {duplicates}")
    print(f"workers after warm-up {report.warm}, at the end {report.end}")


if __name__ == "__main__":
    main()
