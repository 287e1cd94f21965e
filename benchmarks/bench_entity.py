"""Throughput of one compute's GET (and of GET /-/) with `wrk` on loopback,
side by side in one run: occi-server (simulated backend, the default workers
of `occi-server serve`), a bare Flask handler answering the same bytes on the
same gunicorn settings, and pyssf 0.4.7 (2012, Python 2.7, in memory) on
gunicorn 19 with the same settings. Medians of interleaved rounds.

    .venv/bin/python benchmarks/bench_entity.py [--rounds 5] [--seconds 3]

Needs wrk (apt-get install wrk). pyssf runs where a Python 2.7 interpreter is
found (its packages are installed once into benchmarks/results/pyssf); where
none is, the report says so and leaves its column empty. Prints a Markdown
table and writes it to benchmarks/results/bench_entity.md; a ratio short of
its target is marked FAILS in the table (not in the tests)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import requests
from bench_http import (
    KIND,
    RESULTS,
    free_port,
    report,
    serve_bare,
    start,
    stop,
    wait_until_up,
)

from occi_server.config import load_config

HERE = Path(__file__).resolve().parent
PYSSF = RESULTS / "pyssf"
PYSSF_PACKAGES = ["pyssf==0.4.7", "gunicorn==19.10.0", "futures==3.3.0"]
THREADS = load_config(environ={}).threads
WORKERS = load_config(environ={}).effective_workers
# (name, path, media type, connections); the targets are the issue's.
CASES = [("GET one compute, text/plain, 1 conn", "entity", "text/plain", 1),
         ("GET one compute, text/plain, 8 conns", "entity", "text/plain", 8),
         ("GET one compute, occi+json, 1 conn", "entity", "application/occi+json", 1),
         ("GET /-/, text/plain, 1 conn", "query", "text/plain", 1)]
AT_LEAST_OF_BARE = {"entity": 2 / 3, "query": 1 / 2}


def python27() -> str | None:
    """A Python 2.7 interpreter: on PATH, or one pyenv keeps (its shim on PATH
    answers only where 2.7 is the version in force)."""
    candidates = [shutil.which(name) for name in ("python2.7", "python2")]
    candidates += sorted(str(p) for p in (Path.home() / ".pyenv" / "versions").glob(
        "2.7*/bin/python2.7"))
    for found in filter(None, candidates):
        if subprocess.run([found, "-c", "import sys; sys.exit(sys.version_info[0] != 2)"],
                          capture_output=True, check=False).returncode == 0:
            return found
    return None


def pyssf_server(port: int) -> subprocess.Popen[bytes] | None:
    python = python27()
    if python is None:
        return None
    if not (PYSSF / "occi").is_dir():
        subprocess.run([python, "-m", "pip", "install", "--quiet", "--target", str(PYSSF),
                        *PYSSF_PACKAGES], check=True)
    env = {**os.environ, "PYTHONPATH": f"{PYSSF}:{HERE / 'pyssf'}"}
    return subprocess.Popen(
        [python, str(PYSSF / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(WORKERS), "--worker-class", "gthread", "--threads", str(THREADS),
         "--log-level", "warning", "pyssf_app:application"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wrk(url: str, media: str, connections: int, seconds: int) -> float:
    out = subprocess.run(["wrk", f"-t{min(connections, 2)}", f"-c{connections}",
                          f"-d{seconds}s", "-H", f"Accept: {media}", url],
                         capture_output=True, text=True, check=True).stdout
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url} answered {errors.group(1)} errors:\n{out}")
    return float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench_entity needs wrk: apt-get install wrk")
    ports = {"bare": free_port(), "pyssf": free_port()}
    with tempfile.TemporaryDirectory() as data:
        ours, base = start(data, workers=None)
        bare = pyssf = None
        try:
            entity = requests.post(base + "/compute/", timeout=30, headers={
                "Content-Type": "text/plain"}, data=f'{KIND}\nX-OCCI-Attribute: '
                'occi.core.title="bench"\n').headers["Location"]
            urls = {"occi-server": {"entity": entity, "query": base + "/-/"}}
            bodies = {f"{what}-{media}": (requests.get(url, headers={"Accept": media},
                                                       timeout=30).content, media)
                      for what, url in urls["occi-server"].items()
                      for media in ("text/plain", "application/occi+json")}
            bare = multiprocessing.Process(target=serve_bare, args=(
                bodies, ports["bare"], {"workers": WORKERS, "threads": THREADS}), daemon=True)
            bare.start()
            bare_base = f"http://127.0.0.1:{ports['bare']}"
            wait_until_up(f"{bare_base}/entity-text/plain")
            urls["bare"] = {"entity": f"{bare_base}/entity-", "query": f"{bare_base}/query-"}
            pyssf = pyssf_server(ports["pyssf"])
            if pyssf is not None:
                pyssf_base = f"http://127.0.0.1:{ports['pyssf']}"
                wait_until_up(pyssf_base + "/-/")
                urls["pyssf"] = {"entity": pyssf_base + "/compute/bench",
                                 "query": pyssf_base + "/-/"}
            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for name, what, media, connections in CASES:
                    for server, at in urls.items():
                        url = at[what] + (media if server == "bare" else "")
                        samples.setdefault((name, server), []).append(
                            wrk(url, media, connections, args.seconds))
        finally:
            stop(ours)
            if bare is not None:
                bare.terminate()
            if pyssf is not None:
                os.killpg(pyssf.pid, signal.SIGTERM)
                pyssf.wait(timeout=30)
    table = [f"workers {WORKERS}, threads {THREADS}, wrk for {args.seconds} s, medians of "
             f"{args.rounds} interleaved rounds; requests per second", "",
             "| case | occi-server | bare Flask, same bytes and gunicorn | pyssf 0.4.7 "
             "| of bare | of pyssf |", "|---|---|---|---|---|---|"]
    for name, what, _media, _connections in CASES:
        median = {server: statistics.median(samples[(name, server)]) for server in urls}
        of_bare = median["occi-server"] / median["bare"]
        verdict = "" if of_bare >= AT_LEAST_OF_BARE[what] \
            else f" FAILS (target {AT_LEAST_OF_BARE[what]:.2f})"
        if "pyssf" in median:
            of_pyssf = median["occi-server"] / median["pyssf"]
            pyssf_cells = (f"{median['pyssf']:.0f}", f"{of_pyssf:.2f}"
                           + ("" if of_pyssf >= 1 or what != "entity" else " FAILS (target 1)"))
        else:
            pyssf_cells = ("no Python 2.7 here", "")
        table.append(f"| {name} | {median['occi-server']:.0f} | {median['bare']:.0f} | "
                     f"{pyssf_cells[0]} | {of_bare:.2f}{verdict} | {pyssf_cells[1]} |")
    report("bench_entity.md", table)


if __name__ == "__main__":
    main()
