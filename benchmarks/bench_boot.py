"""Time from POST /compute/ to the guest's first console line, against the same
tiny image started with bare qemu-system-x86_64 (same accelerator), in one run.

    .venv/bin/python benchmarks/bench_boot.py [--rounds 3]

Needs root, a running libvirt (scripts/daemons.sh) and the tiny image (it is
built on first use). Prints the medians and their ratio."""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from occi_server.config import load_config
from occi_server.http import create_app
from occi_server.images.tiny import build

MARKER = b"occi-tiny: booted"
SITE = "http://bench.local/occi/"


def bare_qemu(images: Path, work: Path) -> float:
    console = work / "bare-console.log"
    console.unlink(missing_ok=True)
    started = time.perf_counter()
    process = subprocess.Popen([
        "qemu-system-x86_64", "-accel", "tcg", "-m", "256", "-display", "none", "-nodefaults",
        "-no-reboot", "-serial", f"file:{console}", "-kernel", str(images / "tiny-vmlinuz"),
        "-initrd", str(images / "tiny-initrd.gz"),
        "-append", "console=ttyS0 panic=-1 loglevel=4",
        "-drive", f"file={images / 'tiny.raw'},if=virtio,format=raw,readonly=on"])
    try:
        return _until_marker(console, started)
    finally:
        process.kill()
        process.wait()


def through_occi(client, data_dir: Path) -> float:
    body = ('Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
            f'class="kind"\nCategory: tiny; scheme="{SITE}os_tpl#"; class="mixin"\n'
            "X-OCCI-Attribute: occi.compute.memory=0.25\n")
    started = time.perf_counter()
    response = client.post("/compute/", data=body, headers={"Content-Type": "text/plain"})
    assert response.status_code == 201, response.get_data(as_text=True)
    path = response.headers["Location"].removeprefix("http://localhost")
    try:
        return _until_marker(data_dir / "instances" / path.rpartition("/")[2] / "console.log",
                             started)
    finally:
        client.delete(path)


def _until_marker(console: Path, started: float, timeout: float = 120) -> float:
    while time.perf_counter() - started < timeout:
        if console.exists() and MARKER in console.read_bytes():
            return time.perf_counter() - started
        time.sleep(0.01)
    raise TimeoutError(f"no {MARKER!r} on {console} within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="occi-bench-", dir="/var/tmp"))
    data_dir.chmod(0o755)
    try:
        images = data_dir / "images"
        build(images, Path("/var/tmp/occi-test-images/cache"))
        app = create_app(load_config(environ={}, backend="simulated", compute_backend="libvirt",
                                     data_dir=str(data_dir), site_scheme=SITE,
                                     accelerator="tcg", reconcile_seconds=0))
        client = app.test_client()
        bare, occi = [], []
        for _ in range(args.rounds):
            bare.append(bare_qemu(images, data_dir))
            occi.append(through_occi(client, data_dir))
        b, o = statistics.median(bare), statistics.median(occi)
        print(f"{'path':28} {'median s':>9}   rounds")
        print(f"{'bare qemu-system-x86_64':28} {b:9.2f}   {', '.join(f'{x:.2f}' for x in bare)}")
        print(f"{'POST /compute/ (libvirt)':28} {o:9.2f}   {', '.join(f'{x:.2f}' for x in occi)}")
        print(f"ratio OCCI / bare: {o / b:.2f}")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root (libvirt qemu:///system)")
    main()
