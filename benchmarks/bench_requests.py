"""Request cost of occi-server against a bare Flask handler that returns the
same bytes, both in process through Flask's test client, in the same run.

    .venv/bin/python benchmarks/bench_requests.py [--entities 1000] [--repeat 200]

Prints a table of median microseconds per request and the ratio to the baseline."""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable

from flask import Flask, Response

from occi_server.config import load_config
from occi_server.http import create_app

KIND = 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'


def timed(call: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def bare_app(bodies: dict[str, tuple[bytes, str]]) -> Flask:
    app = Flask("baseline")

    @app.route("/<path:path>")
    def serve(path: str) -> Response:
        body, content_type = bodies[path]
        return Response(body, content_type=content_type)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entities", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(load_config(environ={}, backend="simulated", data_dir=data_dir))
        client = app.test_client()
        body = f'{KIND}\nX-OCCI-Attribute: occi.core.title="bench"\n'
        start = time.perf_counter()
        for _ in range(args.entities):
            client.post("/compute/", data=body, headers={"Content-Type": "text/plain"})
        create_us = (time.perf_counter() - start) / args.entities * 1e6
        entity = client.get("/compute/", headers={"Accept": "text/uri-list"}).get_data(
            as_text=True).split()[0].split("/", 3)[3]
        cases = {
            "entity text/plain": (entity, "text/plain"),
            "entity occi+json": (entity, "application/occi+json"),
            f"collection of {args.entities} text/plain": ("compute/", "text/plain"),
            f"collection of {args.entities} occi+json": ("compute/", "application/occi+json"),
        }
        bodies = {}
        for name, (path, accept) in cases.items():
            response = client.get("/" + path, headers={"Accept": accept})
            bodies[name] = (response.get_data(), accept)
        baseline = bare_app({name: bodies[name] for name in cases}).test_client()
        rows = []
        for name, (path, accept) in cases.items():
            repeat = args.repeat if "entity" in name else max(5, args.repeat // 20)
            ours = timed(lambda p=path, a=accept: client.get("/" + p, headers={"Accept": a}),
                         repeat)
            base = timed(lambda n=name: baseline.get("/" + n), repeat)
            rows.append((name, ours, base, ours / base))
    print(f"{'case':40} {'occi µs':>10} {'bare µs':>10} {'ratio':>8}")
    for name, ours, base, ratio in rows:
        print(f"{name:40} {ours:10.0f} {base:10.0f} {ratio:8.1f}")
    print(f"create (text/plain, simulated backend): {create_us:.0f} µs per entity")
    print(json.dumps({"rows": [dict(zip(("case", "occi_us", "bare_us", "ratio"), r,
                                        strict=True)) for r in rows],
                      "create_us": create_us}))


if __name__ == "__main__":
    main()
