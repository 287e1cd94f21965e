"""A bounded load test on loopback (benchmarks/soak.py, shortened; run the
script for minutes): concurrent clients, no 5xx, nothing lost or doubled, the
tenant's quota usage what it holds, no growth of the workers' memory or
descriptors after warm-up."""

from __future__ import annotations

import os

import pytest

from benchmarks.soak import Service, soak

SECONDS = float(os.environ.get("OCCI_SOAK_SECONDS", "40"))


def test_load_leaves_everything_consistent(tmp_path) -> None:
    service = Service(str(tmp_path / "data"))
    try:
        report = soak(service.url, service.process.pid, SECONDS, clients=8)
    finally:
        service.stop()
    assert report.requests > 200
    assert report.server_errors == 0, report.statuses
    assert set(report.statuses) <= {200, 201, 409}, report.statuses  # 409: a state's action
    assert sorted(report.listed) == sorted(report.kept)  # none lost, none doubled
    attributes = [compute["attributes"] for compute in report.stored]
    assert len(attributes) == len(report.kept)
    assert (report.usage["instances"], report.usage["cores"], report.usage["memory"]) == (
        len(attributes), sum(a["occi.compute.cores"] for a in attributes),
        pytest.approx(sum(a["occi.compute.memory"] for a in attributes)))
    assert report.end["fds"] <= report.warm["fds"] + 6, (report.warm, report.end)
    assert report.end["rss_kib"] <= report.warm["rss_kib"] * 1.25 + 8192, (report.warm,
                                                                            report.end)
