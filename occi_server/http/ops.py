"""Operations endpoints: Prometheus metrics at /metrics, a health check at
/health (the store, the hypervisor, the iSCSI exporter, the DHCP servers) and
the jobs at /jobs/."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from occi_server.errors import BadRequest, NotFound, OCCIError
from occi_server.http.numbers import whole_number
from occi_server.http.tenancy import require_operator
from occi_server.kinds.infrastructure import COMPUTE
from occi_server.kinds.templates import MONITORING_COUNTERS
from occi_server.service import Service

blueprint = Blueprint("ops", __name__)


class GuestCollector:
    """Usage counters of every running guest, read from the hypervisor at scrape time."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        families = {name: GaugeMetricFamily(f"occi_guest_{name}", text, labels=["compute"])
                    for name, _kind, text in MONITORING_COUNTERS}
        compute = self.service.backends.compute
        if compute.observes:
            with self.service.store.transaction(write=False) as repo:
                guests = [g for g in repo.list(kinds=[COMPUTE.type_id])
                          if g.attributes.get("occi.compute.state") == "active"]
            for guest in guests:
                for name, value in compute.stats(guest).items():
                    family = families.get(name.removeprefix("occi_server.monitoring."))
                    if family is not None:
                        family.add_metric([guest.location], float(value))
        yield from families.values()


@blueprint.get("/metrics")
def metrics() -> Response:
    require_operator()  # per-guest counters of every tenant
    registry: Any = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # gunicorn workers: add them all up
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
    scrape = CollectorRegistry()
    scrape.register(GuestCollector(current_app.extensions["occi.service"]))
    body = generate_latest(registry) + generate_latest(scrape)
    return Response(body, mimetype=CONTENT_TYPE_LATEST.split(";")[0],
                    headers={"Content-Type": CONTENT_TYPE_LATEST})


@blueprint.get("/health")
def health() -> Response:
    service: Service = current_app.extensions["occi.service"]
    checks: dict[str, dict[str, str]] = {}
    try:
        with service.store.transaction(write=False) as repo:
            checks["store"] = {"status": "ok", "detail": f"{repo.count()} entities"}
    except OCCIError as exc:
        checks["store"] = {"status": "failing", "detail": exc.message}
    for kind, backend in service.backends.areas():
        try:
            checks[kind.term] = {"status": "ok", "detail": backend.health()}
        except Exception as exc:  # whatever the infrastructure raises, the check reports it
            checks[kind.term] = {"status": "failing",
                            "detail": getattr(exc, "message", None) or str(exc)}
    healthy = all(check["status"] == "ok" for check in checks.values())
    response = jsonify({"status": "ok" if healthy else "failing", "checks": checks})
    response.status_code = 200 if healthy else 503
    return response


def _job(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "created": row["created"].isoformat(), "updated": row["updated"].isoformat()}


@blueprint.get("/jobs/")
def jobs() -> Response:
    state = request.args.get("state") or None
    if state not in (None, "running", "done", "failed"):
        raise BadRequest("state must be running, done or failed")
    limit = whole_number("limit", request.args.get("limit", "100"), least=1, most=1000)
    service: Service = current_app.extensions["occi.service"]
    with service.store.transaction(write=False, scope=g.scope) as repo:
        found = repo.jobs(state=state, limit=limit)
    return jsonify({"jobs": [_job(row) for row in found]})


@blueprint.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    service: Service = current_app.extensions["occi.service"]
    with service.store.transaction(write=False, scope=g.scope) as repo:
        found = repo.job(job_id)
    if found is None:
        raise NotFound(f"no job {job_id}")
    return jsonify(_job(found))
