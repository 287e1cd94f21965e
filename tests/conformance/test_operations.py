"""What operators watch: Prometheus metrics, the health check, request ids in
the logs."""

from __future__ import annotations

import json
import logging

import pytest

from occi_server.http.logs import JsonFormatter, RequestIdFilter
from occi_server.metrics import route_of
from tests.conftest import Client


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line
                                                 for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_are_counted_by_route_and_status(client: Client) -> None:
    before = client.get("/metrics").get_data(as_text=True)
    compute = client.compute()
    client.get(compute)
    client.get("/compute/no-such-thing")
    text = client.get("/metrics").get_data(as_text=True)
    for labels, more in (({"method": "POST", "route": "/compute/", "status": "201"}, 1),
                         ({"method": "GET", "route": "/compute/{id}", "status": "200"}, 1),
                         ({"method": "GET", "route": "/compute/{id}", "status": "404"}, 1)):
        assert sample(text, "occi_requests_total", **labels) == \
            sample(before, "occi_requests_total", **labels) + more
    assert sample(text, "occi_request_duration_seconds_count", method="POST",
                  route="/compute/") >= 1
    assert compute.rpartition("/")[2] not in text  # ids never become labels


def test_the_sqlite_writers_turns_are_timed(client: Client) -> None:
    names = ("occi_store_write_turn_held_seconds_count", "occi_store_write_turn_wait_seconds_count",
             "occi_store_write_turn_held_seconds_sum", "occi_store_write_turn_cpu_seconds_total")
    before = client.get("/metrics").get_data(as_text=True)
    client.compute()  # the request's write transaction, then its job's
    text = client.get("/metrics").get_data(as_text=True)
    held, waited, held_seconds, cpu_seconds = (sample(text, name) - sample(before, name)
                                               for name in names)
    assert held == waited == 2
    assert 0 < held_seconds < 10
    assert 0 < cpu_seconds <= held_seconds  # the writing threads' own, within their turns


def test_backend_failures_are_counted(make_app) -> None:
    client = Client(make_app(simulated_failures=["storage.create"]))
    before = sample(client.get("/metrics").get_data(as_text=True),
                    "occi_backend_errors_total", area="storage")
    client.post_text("/storage/", ['Category: storage; scheme="http://schemas.ogf.org/occi/'
                                   'infrastructure#"; class="kind"',
                                   "X-OCCI-Attribute: occi.storage.size=1"])
    after = sample(client.get("/metrics").get_data(as_text=True),
                   "occi_backend_errors_total", area="storage")
    assert after == before + 1


@pytest.mark.parametrize(("path", "route"), [
    ("/", "/"), ("/-/", "/-/"), ("/compute/", "/compute/"), ("/compute/x1", "/compute/{id}"),
    ("/compute/x1/console", "/compute/{id}/console"), ("/compute/x1/anything", "/{other}"),
    ("/link/storagelink/l1", "/link/storagelink/{id}"), ("/mixin/my/tag/", "/mixin/{mixin}/"),
    ("/marketplace/api/entries/m1/deprecate", "/marketplace/api/entries/{id}/deprecate"),
    ("/whatever/you/like", "/{other}"),
])
def test_routes_have_few_shapes(path: str, route: str) -> None:
    assert route_of(path) == route


def test_health_reports_each_part(client: Client) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    report = response.get_json()
    assert report["status"] == "ok"
    assert set(report["checks"]) == {"store", "compute", "storage", "network"}
    assert "entities" in report["checks"]["store"]["detail"]


def test_health_is_503_when_a_part_fails(make_app) -> None:
    client = Client(make_app(simulated_failures=["unavailable"]))
    app = client.app
    service = app.extensions["occi.service"]

    def broken() -> str:
        raise RuntimeError("hypervisor gone")
    service.backends.compute.health = broken
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["checks"]["compute"] == {"status": "failing",
                                                        "detail": "hypervisor gone"}


def test_each_response_names_its_request(client: Client) -> None:
    chosen = client.get("/-/", headers={"X-Request-Id": "trace-42"})
    assert chosen.headers["X-Request-Id"] == "trace-42"
    fresh = client.get("/-/", headers={"X-Request-Id": "spaces and <markup>"})
    assert len(fresh.headers["X-Request-Id"]) == 32  # a new one instead


def test_json_logs_carry_the_request_id(client: Client) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler, logger = Keep(), logging.getLogger("occi_server.http")
    handler.addFilter(RequestIdFilter())
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        client.get("/-/", headers={"X-Request-Id": "trace-7"})
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    [line] = [json.loads(JsonFormatter().format(r)) for r in records
              if r.getMessage().startswith("request ")]
    assert line["request_id"] == "trace-7" and line["status"] == 200
    assert line["route"] == "/-/" and line["level"] == "info"
