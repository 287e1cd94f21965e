"""Prometheus metrics of the service. Under gunicorn each worker writes its
values into PROMETHEUS_MULTIPROC_DIR (set by `occi-server serve` before this
module is imported), and a scrape of any worker adds them all up."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter("occi_requests_total", "HTTP requests answered",
                   ["method", "route", "status"])
LATENCY = Histogram("occi_request_duration_seconds", "Time to answer an HTTP request",
                    ["method", "route"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                             5, 10, 30, 60))
JOBS = Counter("occi_jobs_total", "Jobs finished, by operation and outcome",
               ["operation", "outcome"])
# SQLite lets one writer in at a time (store/writers.py): how long writers wait
# for their turn and hold it. The held time's rate is the share of the time
# the store was writing: near 1, writes queue behind each other and only a
# shorter turn or PostgreSQL makes more of them.
_TURN_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1, 2.5, 5, 10, 30)
WRITE_TURN_WAIT = Histogram("occi_store_write_turn_wait_seconds",
                            "Time a write transaction waited for its turn (SQLite store)",
                            buckets=_TURN_BUCKETS)
WRITE_TURN_HELD = Histogram("occi_store_write_turn_held_seconds",
                            "Time a write transaction held its turn, BEGIN to COMMIT "
                            "(SQLite store)", buckets=_TURN_BUCKETS)
# Of the time held, the CPU the writing thread used: beside the held time, it
# tells a turn's own work from its waits for the interpreter and the cores.
WRITE_TURN_CPU = Counter("occi_store_write_turn_cpu_seconds",
                         "CPU time write transactions' own threads used in their turns "
                         "(SQLite store)")
BACKEND_ERRORS = Counter("occi_backend_errors_total",
                         "Operations the infrastructure refused or failed", ["area"])

_KINDS = ("compute", "storage", "network")
_LINKS = ("networkinterface", "storagelink")


def route_of(path: str) -> str:
    """The route a path takes, ids replaced, so that labels stay few: /compute/{id}."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/"
    head, rest = parts[0], parts[1:]
    if head in ("-", ".well-known", "metrics", "health"):
        return f"/{head}/"
    if head == "jobs":
        return "/jobs/" + ("{id}" if rest else "")
    if head in _KINDS and len(rest) <= 1:
        return f"/{head}/" + ("{id}" if rest else "")
    if head == "compute" and rest[1:] == ["console"]:
        return "/compute/{id}/console"
    if head == "link" and rest and rest[0] in _LINKS:
        return f"/link/{rest[0]}/" + ("{id}" if len(rest) > 1 else "")
    if head == "mixin":
        return "/mixin/{mixin}/"
    if head == "marketplace":
        shape = "/".join("{id}" if n == 2 else part for n, part in enumerate(rest))
        if shape in ("", "api/openapi.json", "api/entries", "api/entries/{id}",
                     "api/entries/{id}/deprecate"):
            return f"/marketplace/{shape}"
    return "/{other}"
