"""Facts about disk image files, read from the files themselves."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

from occi_server.errors import BackendFailure

QCOW2_MAGIC = b"QFI\xfb"


def virtual_size(path: Path, disk_format: str) -> int:
    """The size in bytes a guest sees: the file's size for raw, the header's
    size field (bytes 24-31, big-endian) for qcow2."""
    if disk_format == "raw":
        return path.stat().st_size
    with path.open("rb") as handle:
        header = handle.read(32)
    if len(header) < 32 or header[:4] != QCOW2_MAGIC:
        raise ValueError(f"{path.name} is not a qcow2 image")
    return int(struct.unpack(">Q", header[24:32])[0])


def qemu_img(*args: str, doing: str, timeout: float = 24 * 3600) -> str:
    """Run qemu-img; its output, or BackendFailure saying what was being done."""
    try:
        result = subprocess.run(["qemu-img", *args], check=True, capture_output=True,
                                text=True, timeout=timeout)
    except FileNotFoundError:
        raise BackendFailure("qemu-img is not installed (apt-get install qemu-utils)") from None
    except subprocess.CalledProcessError as exc:
        raise BackendFailure(f"{doing} failed: {exc.stderr.strip()}") from None
    return result.stdout
