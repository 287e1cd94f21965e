"""IP reservations through the real server: 50 reservations sent at once to
several workers hold 50 different addresses, on SQLite and on PostgreSQL (the
store's primary key on the address, whatever the interleaving), and a pool
that is used up says so."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.integration.test_serve import serving

RESERVATION = ('Category: ipreservation; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
               'class="kind"\n')


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_fifty_parallel_reservations_hold_fifty_addresses(tmp_path: Path, database: str) -> None:
    with serving(tmp_path / "data", database,
                 floating_ip_pools=json.dumps({"public": "192.0.2.0/26"}),
                 quotas=json.dumps({"default": {"public_ips": -1}})) as server:

        def reserve(_: int) -> str:
            response = requests.post(server.url + "/ipreservation/", data=RESERVATION,
                                     headers={"Content-Type": "text/plain",
                                              "Accept": "application/occi+json"}, timeout=60)
            assert response.status_code == 201, response.text
            return response.json()["attributes"]["occi.ipreservation.address"]

        with ThreadPoolExecutor(max_workers=20) as pool:
            addresses = list(pool.map(reserve, range(50)))
        assert len(set(addresses)) == 50
        rest = [reserve(n) for n in range(12)]  # a /26 holds 62
        assert len(set(addresses + rest)) == 62
        full = requests.post(server.url + "/ipreservation/", data=RESERVATION, timeout=60,
                             headers={"Content-Type": "text/plain"})
        assert full.status_code == 409 and "no free address left" in full.text
