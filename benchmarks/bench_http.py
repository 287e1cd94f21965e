"""occi-server over real HTTP against a bare Flask handler that returns the
same bytes, both served by the same WSGI server (gunicorn, one worker) on
loopback, in one run: GET of one entity, of the query interface and of
collections of 1 000 and 10 000 entities in text/plain and
application/occi+json; create and delete
rates with the simulated backend; the worker's memory per 10 000 entities.

    .venv/bin/python benchmarks/bench_http.py [--sizes 1000,10000] [--repeat 50] [--fresh]

GETs are repeated, so most are answered from the answers each worker keeps in
memory (the default); --fresh keeps none, to show what reading and rendering
cost.

Prints a Markdown table and writes it to benchmarks/results/bench_http.md."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import requests
from flask import Flask, Response

from occi_server.kinds.tenancy import QUOTAS

# A load that is the point of the run is not stopped by the built-in quotas.
UNLIMITED = {"OCCI_QUOTAS": json.dumps({"default": dict.fromkeys(QUOTAS, -1)})}

KIND = 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'
SERVER = Path(sys.executable).parent / "occi-server"
RESULTS = Path(__file__).resolve().parent / "results"
MEDIA = ("text/plain", "application/occi+json")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def start(data: str, *, workers: int | None = 1, code: str | None = None,
          **settings: str) -> tuple[subprocess.Popen[bytes], str]:
    """`occi-server serve` on a free loopback port with the simulated backend, no
    reconciler and no quotas (`workers`: None for serve's default; `code`: a
    checkout whose occi_server to run instead of this one's), answering."""
    port = free_port()
    env = {**os.environ, "OCCI_BACKEND": "simulated", "OCCI_RECONCILE_SECONDS": "0",
           **({"PYTHONPATH": code} if code else {}),
           "OCCI_LOG_LEVEL": "warning", **UNLIMITED,
           **{f"OCCI_{name.upper()}": value for name, value in settings.items()}}
    server = subprocess.Popen(
        [str(SERVER), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data,
         *(["--workers", str(workers)] if workers else [])],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    wait_until_up(url + "/-/")
    return server, url


def stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)


def serve_bare(bodies: dict[str, tuple[bytes, str]], port: int,
               settings: dict[str, int] | None = None) -> None:
    """The baseline: Flask returning captured bytes, under the same gunicorn setup
    (one worker of 4 threads unless `settings` say otherwise)."""
    from occi_server.wsgi import GunicornServer
    app = Flask("baseline")

    @app.route("/<path:path>")
    def serve(path: str) -> Response:
        body, content_type = bodies[path]
        return Response(body, content_type=content_type)

    GunicornServer(app, {"bind": f"127.0.0.1:{port}", "workers": 1, "worker_class": "gthread",
                         "threads": 4, "accesslog": None, "loglevel": "warning",
                         **(settings or {})}).run()


def timed(url: str, accept: str, repeat: int, headers: dict[str, str] | None = None) -> float:
    """Median ms of `repeat` GETs (`headers`: sent besides Accept)."""
    return timed_side_by_side([url], accept, repeat, headers)[0]


def timed_side_by_side(urls: list[str], accept: str, repeat: int,
                       headers: dict[str, str] | None = None) -> list[float]:
    """Median ms of `repeat` GETs of each URL, taken in turns (see medians_in_turns)."""
    sent = {"Accept": accept, **(headers or {})}
    return medians_in_turns([getter(url, sent) for url in urls], repeat)


def getter(url: str, headers: dict[str, str]) -> Callable[[], None]:
    """A GET of `url` with `headers`, in a session of its own, that must succeed."""
    session = requests.Session()

    def get() -> None:
        session.get(url, headers=headers, timeout=120).raise_for_status()
    return get


def medians_in_turns(runs: list[Callable[[], object]], repeat: int) -> list[float]:
    """Median ms of `repeat` calls of each, taken in turns (one of each, then
    again), so that the machine's load drifting during the run weighs on them
    alike."""
    samples: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for run, taken in zip(runs, samples, strict=True):
            start = time.perf_counter()
            run()
            taken.append(time.perf_counter() - start)
    return [statistics.median(taken) * 1000 for taken in samples]


def worker_rss_kib(master: int) -> int:
    """Resident memory of the (single) gunicorn worker of `master`."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    status = Path(f"/proc/{children[0]}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmRSS:")))


def post_compute(url: str) -> str:
    """Create one compute at the site `url`; its location."""
    response = requests.post(url + "/compute/", timeout=60, headers={
        "Content-Type": "text/plain"}, data=f'{KIND}\nX-OCCI-Attribute: occi.core.title="b"\n')
    response.raise_for_status()
    return response.headers["Location"]


def create(url: str, count: int) -> tuple[float, list[str]]:
    """Entities per second through 8 concurrent clients, and their locations."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        locations = list(pool.map(post_compute, [url] * count))
    return count / (time.perf_counter() - start), locations


def delete(locations: list[str]) -> float:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for response in pool.map(lambda at: requests.delete(at, timeout=60), locations):
            response.raise_for_status()
    return len(locations) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--fresh", action="store_true",
                        help="keep no answers in memory: every GET is read and rendered afresh")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory() as data:
        server, url = start(data, default_page_size="0",
                            **({"answer_cache_bytes": "0"} if args.fresh else {}))
        try:
            rss_empty = worker_rss_kib(server.pid)
            rate, probe = create(url, 1000)
            rows.append(("create, simulated backend, 8 clients", f"{rate:.0f}/s", "", ""))
            rows.append(("delete, simulated backend, 8 clients", f"{delete(probe):.0f}/s",
                         "", ""))
            _rate, [entity] = create(url, 1)
            rows += run_against_bare([
                *((f"GET one entity, {media}", entity, media, args.repeat) for media in MEDIA),
                *((f"GET /-/ (the query interface), {media}", url + "/-/", media, args.repeat)
                  for media in MEDIA)])
            stored = 1
            for size in sizes:
                create(url, size - stored)
                stored = size
                rows += run_against_bare([
                    (f"GET {size} entities, {media}", url + "/compute/", media,
                     max(3, args.repeat * 1000 // size // 10)) for media in MEDIA])
            per_10k = (worker_rss_kib(server.pid) - rss_empty) / stored * 10_000 / 1024
            rows.append((f"worker memory per 10 000 entities (after listing {stored})",
                         f"{per_10k:.1f} MiB", "", ""))
        finally:
            stop(server)
    table = ["| case | occi-server | bare Flask, same gunicorn | ratio |", "|---|---|---|---|"]
    table += [f"| {name} | {ours} | {bare} | {ratio} |" for name, ours, bare, ratio in rows]
    report("bench_http-fresh.md" if args.fresh else "bench_http.md", table)


def report(name: str, lines: list[str]) -> None:
    """Print a benchmark's table and keep it in results/`name`."""
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text(text)


def run_against_bare(cases: list[tuple[str, str, str, int]]) -> list[tuple[str, str, str, str]]:
    """Each case (name, URL, media type, repetitions) against the bare handler
    serving the bytes occi-server answers it with now."""
    bodies = {f"case{n}": (requests.get(location, headers={"Accept": media}, timeout=300).content,
                           media) for n, (_name, location, media, _r) in enumerate(cases)}
    with bare_server(bodies) as bare:
        rows = []
        for n, (name, location, media, repeat) in enumerate(cases):
            ours, base = timed_side_by_side([location, f"{bare}/case{n}"], media, repeat)
            rows.append((name, f"{ours:.2f} ms", f"{base:.2f} ms", f"{ours / base:.1f}"))
        return rows


@contextmanager
def bare_server(bodies: dict[str, tuple[bytes, str]]) -> Iterator[str]:
    """The bare handler (`serve_bare`) serving `bodies` by name, answering at the URL given."""
    port = free_port()
    bare = multiprocessing.Process(target=serve_bare, args=(bodies, port), daemon=True)
    bare.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_up(f"{url}/{next(iter(bodies))}")
        yield url
    finally:
        bare.terminate()
        bare.join(timeout=10)


if __name__ == "__main__":
    main()
