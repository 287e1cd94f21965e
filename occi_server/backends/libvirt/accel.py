"""Which accelerator guests get: KVM when it actually boots a Linux guest,
otherwise TCG (software emulation).

On some hosts /dev/kvm opens yet a KVM guest hangs in early boot, so the probe
boots the tiny image's kernel under KVM in `occi.probe` mode and waits for its
marker. The verdict is cached per host kernel, QEMU and probe kernel."""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
from dataclasses import dataclass
from pathlib import Path

from occi_server.images import Image

log = logging.getLogger("occi_server.libvirt")
PROBE_SECONDS = 20
MARKER = b"occi-tiny: probe ok"


@dataclass(frozen=True)
class Accelerator:
    domain_type: str  # libvirt <domain type=…>: "kvm" or "qemu"
    reason: str

    @property
    def label(self) -> str:
        return "KVM" if self.domain_type == "kvm" else "TCG"


def choose(setting: str, probe_image: Image | None, cache: Path) -> Accelerator:
    if setting == "tcg":
        return Accelerator("qemu", "TCG chosen by configuration")
    if setting == "kvm":
        return Accelerator("kvm", "KVM chosen by configuration")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return Accelerator("qemu", "/dev/kvm is not usable")
    if probe_image is None or "kernel" not in probe_image.info:
        return Accelerator("qemu", "KVM not verified: no probe image with a kernel")
    key = {"host": platform.release(), "qemu": _qemu_version(),
           "kernel": probe_image.info["kernel"], "size": Path(probe_image.info["kernel"])
           .stat().st_size}
    try:
        cached = json.loads(cache.read_text())
        if cached["key"] == key:
            return Accelerator(cached["domain_type"], cached["reason"] + " (cached)")
    except (OSError, ValueError, KeyError):
        pass
    accelerator = _probe(probe_image)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"key": key, "domain_type": accelerator.domain_type,
                                 "reason": accelerator.reason}))
    return accelerator


def _qemu_version() -> str:
    try:
        return subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                              text=True, timeout=10).stdout.split("\n")[0]
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def _probe(image: Image) -> Accelerator:
    command = ["qemu-system-x86_64", "-accel", "kvm", "-m", "256", "-display", "none",
               "-serial", "stdio", "-monitor", "none", "-no-reboot", "-nodefaults",
               "-kernel", image.info["kernel"],
               "-append", "console=ttyS0 panic=-1 loglevel=4 occi.probe"]
    if "initrd" in image.info:
        command += ["-initrd", image.info["initrd"]]
    log.info("probing KVM: booting %s under KVM (up to %d s)", image.term, PROBE_SECONDS)
    try:
        result = subprocess.run(command, capture_output=True, timeout=PROBE_SECONDS)
        output = result.stdout
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout or b""
    except OSError as exc:
        return Accelerator("qemu", f"KVM probe could not run: {exc}")
    if MARKER in output:
        return Accelerator("kvm", "a probe guest booted under KVM")
    return Accelerator("qemu", f"a probe guest did not boot under KVM within "
                               f"{PROBE_SECONDS} s; using TCG")
