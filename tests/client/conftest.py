"""A real running server for the client tests (simulated backend, loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_serve import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    running = Server(Path(tmp_path_factory.mktemp("client")) / "data")
    running.start(workers=2, floating_ip_pools='{"ext": "192.0.2.128/28"}')
    yield running
    running.stop()
