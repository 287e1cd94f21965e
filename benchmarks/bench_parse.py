"""Parsing cost per KiB of a text/plain body, from 1 KiB to 4 MiB: the OCCI
text parser (quote-aware splitting, attribute values) against splitting the
same bytes into lines, a linear baseline, in the same run. A parser linear in
its input keeps the same ratio to the baseline at every size.

    .venv/bin/python benchmarks/bench_parse.py [--repeat 5]

Prints microseconds per KiB for both and their ratio, size by size."""

from __future__ import annotations

import argparse

from bench_requests import timed

from occi_server.rendering.base import RequestData
from occi_server.rendering.text import TextPlainParser

KIND = 'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'
SIZES_KIB = (1, 16, 256, 1024, 4096)


def body_of(kib: int) -> bytes:
    """A create whose title is one long unquoted value (what made parsing quadratic),
    beside a quoted one of the same length."""
    half = max(1, kib * 512 - 80)
    return (f"{KIND}\nX-OCCI-Attribute: occi.core.title={'a' * half}\n"
            f'X-OCCI-Attribute: occi.core.summary="{"b" * half}"\n').encode()


def measure(repeat: int) -> list[tuple[int, float, float]]:
    """(KiB, parser µs per KiB, baseline µs per KiB) per size."""
    rows = []
    for kib in SIZES_KIB:
        body = body_of(kib)
        ours = timed(lambda body=body: TextPlainParser().read(
            RequestData(body=body, headers=[])), repeat)
        baseline = timed(lambda body=body: [
            line.partition(":") for line in body.decode().splitlines()], repeat)
        size = len(body) / 1024
        rows.append((kib, ours / size, baseline / size))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    rows = measure(parser.parse_args().repeat)
    print(f"{'body':>8} {'parser µs/KiB':>14} {'baseline µs/KiB':>16} {'ratio':>7}")
    for kib, ours, baseline in rows:
        print(f"{kib:>6} K {ours:>14.2f} {baseline:>16.3f} {ours / baseline:>7.1f}")
    largest, smallest = rows[-1][1], min(row[1] for row in rows)
    print(f"cost per KiB at 4 MiB / the cheapest size's: {largest / smallest:.2f}")


if __name__ == "__main__":
    main()
