"""What a site's size costs the libvirt backend: placing a guest (every host is
asked what it holds) and one reconciler pass (the orphan audit lists every
host's domains; each guest's state is read where it runs), against the number
of hosts, with libvirt's test driver as the hosts (each `test:///<file>` is a
host of its own, in process: the figures are the backend's cost per host,
without the network's round trips; the report adds what one real host's
answer costs through the local libvirtd's socket).

    .venv/bin/python benchmarks/bench_hosts.py [--hosts 1 10 100] [--guests 10]

Prints a Markdown table and writes it to benchmarks/results/bench_hosts.md."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_http import report

from occi_server.backends.libvirt.backend import PREFIX
from occi_server.backends.libvirt.hosts import Hosts

NODE = """<node>
  <cpu><nodes>1</nodes><sockets>1</sockets><cores>32</cores><threads>1</threads>
    <active>32</active><mhz>2600</mhz><model>x86_64</model></cpu>
  <memory>268435456</memory>
  {domains}
</node>"""
DOMAIN = """<domain type='test'><name>{name}</name><memory>524288</memory><vcpu>1</vcpu>
  <os><type>hvm</type></os></domain>"""


def site(directory: Path, hosts: int, guests: int) -> tuple[list[str], list[str]]:
    """`hosts` test-driver hosts with `guests` running guests of ours each;
    returns their URIs and the guests' names."""
    uris, names = [], []
    for host in range(hosts):
        ours = [f"{PREFIX}{host:04x}{guest:08x}" for guest in range(guests)]
        path = directory / f"host{host}.xml"
        path.write_text(NODE.format(domains="\n".join(DOMAIN.format(name=n) for n in ours)))
        uris.append(f"test://{path}")
        names.extend(ours)
    return uris, names


def timed(call, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--guests", type=int, default=10, help="running guests per host")
    args = parser.parse_args()
    rows = []
    for count in args.hosts:
        with tempfile.TemporaryDirectory() as directory:
            uris, names = site(Path(directory), count, args.guests)
            hosts = Hosts(uris, PREFIX)
            hosts.domains()  # every connection open, as in a running worker
            place = timed(lambda h=hosts: h.place(1024 * 1024), 20)
            audit = timed(lambda h=hosts: h.domains(), 20)
            states = timed(lambda h=hosts, n=names: [h.domain(name).state() for name in n], 5)
            entities = len(names)
        rows.append((count, entities, place, audit, states))
    lines = ["| hosts | guests | place one guest | orphan audit (list every host) | "
             "read every guest's state | place, per host | pass, per guest |",
             "|---|---|---|---|---|---|---|"]
    for count, entities, place, audit, states in rows:
        lines.append(f"| {count} | {entities} | {place * 1e3:.2f} ms | {audit * 1e3:.2f} ms | "
                     f"{states * 1e3:.1f} ms | {place / count * 1e6:.0f} µs | "
                     f"{(audit + states) / entities * 1e6:.0f} µs |")
    real = real_host_cost()
    lines.append("")
    lines.append("What one real host's answer costs (the local libvirtd over its socket, "
                 "the RPCs placement makes): " + (f"{real * 1e3:.2f} ms" if real is not None
                                                  else "no libvirtd answers here"))
    report("bench_hosts.md", lines)


def real_host_cost() -> float | None:
    from occi_server.backends.libvirt.hosts import Host
    from occi_server.errors import BackendUnavailable
    host = Host("qemu:///system")
    try:
        host.capacity(PREFIX)
    except BackendUnavailable:
        return None
    return timed(lambda: host.capacity(PREFIX), 50)


if __name__ == "__main__":
    main()
