"""`occi-server image import` and `image build`: an operator's files become
OS templates the service publishes, with checksums; bad files are refused with
the reason and leave the catalogue as it was."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SITE, Client
from tests.support.libvirt import unavailable_reason

SERVER = Path(sys.executable).parent / "occi-server"
pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img is not installed (scripts/setup.sh)")


def image(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SERVER), "image", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(unavailable_reason() is not None, reason=unavailable_reason() or "")
def test_an_imported_disk_is_published_with_its_checksum(make_app, tmp_path: Path) -> None:
    disk = tmp_path / "appliance.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
    data_dir = tmp_path / "data"
    done = image(data_dir, "import", str(disk), "appliance", "--title", "My appliance")
    assert done.returncode == 0, done.stderr
    assert "os_tpl appliance" in done.stdout and "sign-metadata" in done.stdout
    entry = json.loads((data_dir / "images" / "appliance.json").read_text())
    assert entry["format"] == "qcow2" and len(entry["sha256"]) == 64
    disk.write_bytes(b"changed afterwards")  # the catalogue keeps its own copy
    client = Client(make_app(compute_backend="libvirt", data_dir=str(data_dir),
                             accelerator="tcg"))
    model = client.get("/-/").get_data(as_text=True)
    assert f'Category: appliance; scheme="{SITE}os_tpl#"' in model
    assert 'title="My appliance"' in model


@pytest.mark.parametrize(("setup", "args", "reason"), [
    (lambda d: None, ("Appliance",), "not a valid image name"),
    (lambda d: None, ("appliance", "--sha256", "00" * 32), "SHA-256"),
    (lambda d: subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                               str(d / "base.qcow2"), str(d / "disk.qcow2")], check=True),
     ("appliance",), "backing file"),
    (lambda d: (d / "data" / "images").mkdir(parents=True) or
     (d / "data" / "images" / "appliance.json").write_text("{}"), ("appliance",), "already"),
])
def test_a_refused_import_says_why_and_adds_nothing(tmp_path: Path, setup, args, reason) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "base.qcow2"),
                    "64M"], check=True)
    shutil.copy(tmp_path / "base.qcow2", tmp_path / "disk.qcow2")
    setup(tmp_path)
    images = tmp_path / "data" / "images"
    before = sorted(images.iterdir()) if images.exists() else []
    refused = image(tmp_path / "data", "import", str(tmp_path / "disk.qcow2"), *args)
    assert refused.returncode == 1 and reason in refused.stderr, refused.stderr
    assert (sorted(images.iterdir()) if images.exists() else []) == before


def test_a_second_build_with_nothing_changed_is_immediate(tmp_path: Path) -> None:
    first = image(tmp_path / "data", "build", "tiny")
    if first.returncode != 0 and "apt" in first.stderr:
        pytest.skip(f"the tiny image cannot be built here: {first.stderr}")
    assert first.returncode == 0, first.stderr
    metadata = tmp_path / "data" / "images" / "tiny.json"
    written = metadata.stat().st_mtime_ns
    again = image(tmp_path / "data", "build", "tiny")
    assert again.returncode == 0 and metadata.stat().st_mtime_ns == written
