"""What a compute created with an interface on an IP network costs as the
network fills: the same create when the network holds 100 addresses (the
baseline, same run) and 1 000, 10 000 and 50 000 (written into the store
first, as that many creates would take minutes), in process, simulated
backend. The interface's address (the lowest free one) is chosen with the
store's write lock held, so what it costs every other writer waits for.

    .venv/bin/python benchmarks/bench_addresses.py [--repeat 15]

Prints the median milliseconds a create and the ratio to the baseline, and
writes the table to benchmarks/results/bench_addresses.md."""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import tempfile
import time
import uuid

from bench_http import UNLIMITED, report
from sqlalchemy import insert

from occi_server.config import load_config
from occi_server.http import create_app
from occi_server.store.tables import ip_allocations

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
IPNETWORK = "http://schemas.ogf.org/occi/infrastructure/network#"
SIZES = (100, 1000, 10000, 50000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app(load_config(environ=UNLIMITED, backend="simulated", data_dir=data_dir,
                                     network_uplink="lo", reconcile_seconds=0))
        client = app.test_client()
        made = client.post("/network/", headers={"Content-Type": "text/plain"}, data="\n".join([
            f'Category: network; scheme="{INFRA}"; class="kind"',
            f'Category: ipnetwork; scheme="{IPNETWORK}"; class="mixin"',
            'X-OCCI-Attribute: occi.network.address="10.100.0.0/16"',
            'X-OCCI-Attribute: occi.network.gateway="10.100.0.1"']))
        assert made.status_code == 201, made.get_data(as_text=True)
        network = made.headers["Location"]
        store = app.extensions["occi.store"]
        with store.transaction(write=True) as repo:
            found = repo.by_location(network.removeprefix("http://localhost"))
            assert found is not None
        hosts = ipaddress.ip_network("10.100.0.0/16").hosts()
        next(hosts)  # the gateway's
        body = (f'Category: compute; scheme="{INFRA}"; class="kind"\n'
                f'Link: <{network}>; rel="{INFRA}network"; '
                f'category="{INFRA}networkinterface"\n')
        held, rows = 0, []
        for size in SIZES:
            # The stock: addresses held by interfaces that are not there (the choice reads these).
            with store.engine.begin() as connection:
                connection.execute(insert(ip_allocations), [
                    {"network_id": found.id, "address": str(next(hosts)),
                     "link_id": str(uuid.uuid4())} for _ in range(size - held)])
            held = size
            samples = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.post("/compute/", data=body,
                                       headers={"Content-Type": "text/plain"})
                samples.append(time.perf_counter() - started)
                assert response.status_code == 201, response.get_data(as_text=True)
                next(hosts)  # the create took the lowest free address
            rows.append((size, statistics.median(samples) * 1000))
    baseline = rows[0][1]
    report("bench_addresses.md", [
        "| addresses the network holds | ms a create with an interface | of the 100's |",
        "|---|---|---|",
        *(f"| {size} | {ms:.2f} | {ms / baseline:.2f} |" for size, ms in rows)])


if __name__ == "__main__":
    main()
