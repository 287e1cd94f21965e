"""The LVM pool on a real volume group (a loop device made by the test). It
runs where device-mapper works and is skipped, with lvm's own message, where
it does not (containers without device-mapper)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.backends.lvm import LvmStorage
from occi_server.core import Entity
from occi_server.errors import BackendFailure

GIB = 1024 ** 3


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


@pytest.fixture
def volume_group(tmp_path: Path) -> Iterator[str]:
    if os.geteuid() != 0 or not shutil.which("vgcreate") or not shutil.which("losetup"):
        pytest.skip("needs root, lvm2 and losetup")
    backing = tmp_path / "pv.img"
    with backing.open("wb") as handle:
        handle.truncate(256 * 1024 * 1024)
    loop = _run("losetup", "--find", "--show", str(backing))
    if loop.returncode != 0:
        pytest.skip(f"no loop device: {loop.stderr.strip()}")
    device, name = loop.stdout.strip(), f"occi-test-{uuid.uuid4().hex[:8]}"
    try:
        created = _run("vgcreate", "--yes", name, device)
        if created.returncode != 0:
            pytest.skip(f"vgcreate failed: {created.stderr.strip()}")
        probe = _run("lvcreate", "--yes", "--name", "probe", "--size", "4m", name)
        if probe.returncode != 0:
            reason = [line.strip() for line in probe.stderr.splitlines()
                      if "leaked on" not in line and "--help" not in line]
            pytest.skip("logical volumes cannot be created on this host: "
                        + " ".join(reason[:2]))
        _run("lvremove", "--yes", f"{name}/probe")
        yield name
    finally:
        _run("vgremove", "--yes", "--force", name)
        _run("pvremove", "--yes", device)
        _run("losetup", "--detach", device)


def test_volumes_in_a_real_volume_group(volume_group: str, tmp_path: Path) -> None:
    pool = LvmStorage(volume_group, tmp_path / "backups")
    volume = Entity(id="v1", key="v1", kind="k", location="/storage/v1", tenant="vo.example.org",
                    owner="/DC=org/CN=Jo Doe",
                    attributes={"occi.storage.size": 0.0625, "occi.storage.state": "online"})
    pool.create(volume)
    device = Path(f"/dev/{volume_group}/vol-v1")
    assert pool.size("vol-v1") == GIB // 16
    with device.open("r+b") as handle:
        handle.write(b"lvm bytes")
    pool.update(volume, {"occi.storage.size": 0.125})
    assert pool.size("vol-v1") == GIB // 8
    copy = Entity(id="v2", key="v2", kind="k", location="/storage/v2", attributes={})
    pool.snapshot(volume, copy)
    assert Path(f"/dev/{volume_group}/vol-v2").read_bytes()[:9] == b"lvm bytes"
    pool.delete(copy)
    pool.delete(volume)
    assert pool.names() == set()
    assert pool.restore("v1") == GIB // 8
    assert pool.owner("vol-v1") == ("vo.example.org", "/DC=org/CN=Jo Doe", "v1")  # tags kept
    with pytest.raises(BackendFailure, match="exists already"):
        pool.restore("v1")
