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

from occi_server.errors import BadRequest
from occi_server.http.numbers import whole_number
from occi_server.http.tenancy import require_operator
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
        for location, counters in self.service.guest_usage().items():
            for name, value in counters.items():
                family = families.get(name.removeprefix("occi_server.monitoring."))
                if family is not None:
                    family.add_metric([location], float(value))
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
    checks = service.health()
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
    found = service.jobs(g.scope, state=state, limit=limit)
    return jsonify({"jobs": [_job(row) for row in found]})


@blueprint.get("/jobs/<job_id>")
def job(job_id: str) -> Response:
    service: Service = current_app.extensions["occi.service"]
    return jsonify(_job(service.job(g.scope, job_id)))
