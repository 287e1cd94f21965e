"""What a guest's files cost on a host that shares nothing with the frontend
(storage.py's pools, reached through libvirt's storage API), against the same
files made on this machine, in one run: a guest whose image the host lacks
(uploaded: disk, kernel and initrd), one whose image it has cached, and
removing a guest (its files, and the image when it was the last user). The
host is the local libvirtd over its socket: the figures leave out the
network and SSH's cipher, which bound an upload to a real host.

    .venv/bin/python benchmarks/bench_host_files.py [--image tiny] [--repeat 5]

Prints a Markdown table and writes it to benchmarks/results/bench_host_files.md."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench_http import report

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from occi_server.backends.libvirt.hosts import Host
from occi_server.backends.libvirt.storage import (
    BootImage,
    GuestFiles,
    LocalFiles,
    PoolFiles,
)
from tests.support.libvirt import DefinedGuests, drop_pools

IMAGES = Path("/var/tmp/occi-test-images/images")  # tests/support/libvirt.py builds them
SEED = b"\0" * 370 * 1024  # a seed ISO's size


def boot_image(catalogue: Path, name: str) -> BootImage:
    metadata = json.loads((IMAGES / f"{name}.json").read_text())
    for key in ("disk", "kernel", "initrd"):
        if key in metadata:
            shutil.copy(IMAGES / metadata[key], catalogue / metadata[key])
    return BootImage(catalogue / metadata["disk"], metadata.get("format", "qcow2"),
                     *(catalogue / metadata[key] if key in metadata else None
                       for key in ("kernel", "initrd")))


def seconds(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


class Guests:
    """A host's files and its guests defined on them, made and removed together."""

    def __init__(self, files: GuestFiles, image: BootImage) -> None:
        self.files, self.image = files, image
        self.defined = DefinedGuests("benchfiles")

    def make(self, key: str) -> None:
        self.defined.define(key, self.files.make(key, self.image, 1 << 30, SEED))

    def remove(self, key: str) -> None:
        self.defined.undefine(key)
        self.files.remove(key)


def measure(guests: Guests, repeat: int) -> dict[str, float]:
    """Median seconds: the first guest (image not there yet), the next ones,
    and a removal that leaves the image (another guest uses it)."""
    cold, warm, removals = [], [], []
    for round_ in range(repeat):
        cold.append(seconds(lambda r=round_: guests.make(f"cold{r}")))
        warm.append(seconds(lambda r=round_: guests.make(f"warm{r}")))
        removals.append(seconds(lambda r=round_: guests.remove(f"warm{r}")))
        guests.remove(f"cold{round_}")  # the last user: the image goes
    return {"cold": statistics.median(cold), "warm": statistics.median(warm),
            "remove": statistics.median(removals)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--image", default="tiny")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not (IMAGES / f"{args.image}.json").exists():
        sys.exit(f"no {args.image} image in {IMAGES}: the libvirt tests build it")
    work = Path(tempfile.mkdtemp(prefix="occi-bench-files-", dir="/var/tmp"))
    work.chmod(0o755)
    (work / "catalogue").mkdir()
    try:
        image = boot_image(work / "catalogue", args.image)
        sent = sum(path.stat().st_size for path in (image.disk, image.kernel, image.initrd)
                   if path is not None)
        local = measure(Guests(LocalFiles(work / "local"), image), args.repeat)
        pools = measure(Guests(PoolFiles(Host("qemu:///system"), work / "pools",
                                         work / "catalogue", work / "locks"), image),
                        args.repeat)
    finally:
        drop_pools(work)
        shutil.rmtree(work, ignore_errors=True)
    lines = [f"A guest's files, image `{args.image}` ({sent / 2**20:.1f} MiB sent when the "
             f"host lacks it), medians of {args.repeat}:", "",
             "| case | host's own pools (through libvirt) | this machine's files | ratio |",
             "|---|---|---|---|"]
    for case, label in (("cold", "first guest: image uploaded"),
                        ("warm", "next guest: image cached"),
                        ("remove", "a guest removed (image still used)")):
        lines.append(f"| {label} | {pools[case] * 1e3:.1f} ms | {local[case] * 1e3:.1f} ms | "
                     f"{pools[case] / local[case]:.1f} |")
    lines += ["", f"Upload rate through the local socket: "
              f"{sent / 2**20 / (pools['cold'] - pools['warm']):.0f} MiB/s."]
    report("bench_host_files.md", lines)


if __name__ == "__main__":
    main()
