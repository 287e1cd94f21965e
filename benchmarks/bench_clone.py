"""Volumes cloned from a 1 GiB and a 10 GiB image through POST /storage/ (file
pool: qcow2 overlay, its raw view, its iSCSI export when tgtd runs), against
`qemu-img create -b` on the same images, in one run. Copy-on-write means both
times are independent of the image's size.

    .venv/bin/python benchmarks/bench_clone.py [--rounds 5]

Needs root and a running libvirt (scripts/daemons.sh): the image catalogue is
the libvirt compute backend's. Prints the medians and their ratios."""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from occi_server.config import load_config
from occi_server.http import create_app

SITE = "http://bench.local/occi/"
SIZES_GIB = (1, 10)


def make_image(images: Path, size_gib: int) -> Path:
    """A qcow2 image of `size_gib` GiB with 64 MiB of data written into it."""
    disk = images / f"bench{size_gib}.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), f"{size_gib}G"],
                   check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 64M", str(disk)], check=True,
                   capture_output=True)
    (images / f"bench{size_gib}.json").write_text(json.dumps(
        {"title": f"{size_gib} GiB benchmark image", "disk": disk.name, "format": "qcow2"}))
    return disk


def bare_overlay(disk: Path, work: Path) -> float:
    overlay = work / "overlay.qcow2"
    overlay.unlink(missing_ok=True)
    started = time.perf_counter()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(disk),
                    str(overlay)], check=True)
    return time.perf_counter() - started


def through_occi(client, size_gib: int) -> float:
    body = ('Category: storage; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
            f'class="kind"\nCategory: bench{size_gib}; scheme="{SITE}image_tpl#"; '
            'class="mixin"\n')
    started = time.perf_counter()
    response = client.post("/storage/", data=body, headers={"Content-Type": "text/plain"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.get_data(as_text=True)
    client.delete(response.headers["Location"].removeprefix("http://localhost"))
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    data = Path(tempfile.mkdtemp(prefix="occi-bench-clone-", dir="/var/tmp"))
    exporter = "tgt" if subprocess.run(
        ["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
        capture_output=True, check=False).returncode == 0 else "none"
    try:
        (data / "images").mkdir()
        disks = {size: make_image(data / "images", size) for size in SIZES_GIB}
        app = create_app(load_config(
            environ={}, backend="simulated", compute_backend="libvirt",
            storage_backend="filepool", data_dir=str(data), site_scheme=SITE,
            accelerator="tcg", reconcile_seconds=0, quarantine_seconds=0,
            iscsi_exporter=exporter))
        client = app.test_client()
        print(f"iSCSI export: {exporter}; {rounds} rounds each; medians")
        print(f"{'image':>8} {'POST /storage/':>15} {'qemu-img create -b':>19} {'ratio':>6}")
        for size, disk in disks.items():
            occi = statistics.median(through_occi(client, size) for _ in range(rounds))
            bare = statistics.median(bare_overlay(disk, data) for _ in range(rounds))
            print(f"{size:>5} GiB {occi * 1000:>12.1f} ms {bare * 1000:>16.1f} ms "
                  f"{occi / bare:>6.2f}")
        app.extensions["occi.store"].dispose()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
