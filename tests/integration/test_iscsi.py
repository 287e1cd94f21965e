"""Volumes exported over iSCSI by a real tgtd, read by real initiators
(libiscsi's tools and QEMU's iscsi driver), with CHAP enforced."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.backends.filepool import FilePoolStorage, volume_name
from occi_server.backends.iscsi import Credentials, IscsiTarget, TgtExporter
from occi_server.core import Entity
from occi_server.errors import BackendFailure
from tests.conftest import STORAGE, Client, category
from tests.support.iscsi import PORTAL, tgt_unavailable_reason

pytestmark = pytest.mark.skipif(tgt_unavailable_reason() is not None,
                                reason=tgt_unavailable_reason() or "")
GIB = 1024 ** 3


@pytest.fixture
def prefix() -> str:
    return f"iqn.2026-11.test.occi-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(make_app, tmp_path: Path, prefix: str) -> Iterator[Client]:
    app = make_app(storage_backend="filepool", volumes_dir=str(tmp_path / "pool"),
                   iscsi_exporter="tgt", iscsi_portal=PORTAL, iscsi_iqn_prefix=prefix)
    yield Client(app)
    exporter = app.extensions["occi.service"].backends.storage.exporter
    for name in exporter.exported():
        exporter.unexport(name)


def target_of(client: Client, path: str) -> IscsiTarget:
    storage = client.app.extensions["occi.service"].backends.storage
    return storage.target(client.stored(path))


def read_capacity(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iscsi-readcapacity16", url], capture_output=True, text=True,
                          timeout=30)


def test_each_volume_is_its_own_chap_protected_target(client: Client) -> None:
    path = client.storage(0.25)
    target = target_of(client, path)
    assert target.iqn in client.attributes(path)["occi.storage.state.message"]
    good = read_capacity(target.url())
    assert good.returncode == 0, good.stderr
    assert f"Total size:{GIB // 4}" in good.stdout
    wrong = read_capacity(target.url().replace(target.secret, "0" * 16))
    assert wrong.returncode != 0 and "Authentication failure" in wrong.stdout + wrong.stderr
    anonymous = read_capacity(f"iscsi://{target.portal}/{target.iqn}/{target.lun}")
    assert anonymous.returncode != 0
    other = target_of(client, client.storage(0.25))
    assert other.iqn != target.iqn and other.secret != target.secret


def test_the_lun_carries_the_volumes_bytes(client: Client, tmp_path: Path) -> None:
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed")
    path = client.storage(0.25)
    file = Path(client.app.extensions["occi.config"].volumes_path) / volume_name(
        client.key(path))
    with file.open("r+b") as handle:
        handle.write(b"occi-over-iscsi!")
    result = subprocess.run(["qemu-io", "-f", "raw", "-c", "read -v 0 16",
                             target_of(client, path).url()], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert "6f 63 63 69 2d 6f 76 65 72 2d 69 73 63 73 69 21" in result.stdout  # the bytes


def test_delete_unexports(client: Client) -> None:
    path = client.storage(0.25)
    target = target_of(client, path)
    assert client.request("DELETE", path).status_code == 200
    shown = subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
                           capture_output=True, text=True).stdout
    assert target.iqn not in shown


def test_repair_after_a_crash(tmp_path: Path, prefix: str) -> None:
    exporter = TgtExporter(Credentials(tmp_path / "key", prefix), PORTAL)
    pool = FilePoolStorage(tmp_path / "pool", tmp_path / "q", exporter=exporter)
    try:
        orphan_file = tmp_path / "pool" / "vol-crashed.img"  # created, never exported
        orphan_file.write_bytes(b"\0" * 4096)
        gone = tmp_path / "pool" / "vol-gone.img"  # exported, then its file vanished
        gone.write_bytes(b"\0" * 4096)
        exporter.export("vol-gone", gone)
        gone.unlink()
        pool.repair()
        assert exporter.exported() == {"vol-crashed"}
    finally:
        for name in exporter.exported():
            exporter.unexport(name)


def test_a_failed_export_leaves_no_volume(tmp_path: Path, prefix: str) -> None:
    class Refusing(TgtExporter):
        def export(self, name: str, path: Path) -> IscsiTarget:
            raise BackendFailure("refused")

    pool = FilePoolStorage(tmp_path / "pool", tmp_path / "q",
                           exporter=Refusing(Credentials(tmp_path / "key", prefix), PORTAL))
    with pytest.raises(BackendFailure):
        pool.create(Entity(id="v1", key="v1", kind=STORAGE, location="/storage/v1",
                           attributes={"occi.storage.size": 0.01}))
    assert list((tmp_path / "pool").glob("vol-*")) == []


def test_an_operator_restore_exports_the_volume_again(client: Client, prefix: str) -> None:
    path = client.storage(0.25)
    volume_id = client.key(path)  # the quarantine knows volumes by their keys
    target = target_of(client, path)
    assert client.request("DELETE", path).status_code == 200
    config = client.app.extensions["occi.config"]
    server = Path(sys.executable).parent / "occi-server"
    env = {**os.environ, "OCCI_BACKEND": "simulated", "OCCI_STORAGE_BACKEND": "filepool",
           "OCCI_ISCSI_EXPORTER": "tgt", "OCCI_ISCSI_IQN_PREFIX": prefix,
           "OCCI_ISCSI_PORTAL": PORTAL, "OCCI_VOLUMES_DIR": str(config.volumes_path)}
    restored = subprocess.run([str(server), "restore-volume", volume_id, "--data-dir",
                               config.data_dir], env=env, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    assert f"Total size:{GIB // 4}" in read_capacity(target.url()).stdout


def test_a_refused_collection_delete_changes_nothing(client: Client) -> None:
    """Every member is checked before any is torn down: one attached volume makes
    DELETE /storage/ a 409, and the others keep their files and targets."""
    idle, attached = client.storage(0.25), client.storage(0.25)
    client.compute(f'Link: <{attached}>; rel="http://schemas.ogf.org/occi/infrastructure#storage"')
    pool = Path(client.app.extensions["occi.config"].volumes_path)
    files = {path: pool / volume_name(client.key(path)) for path in (idle, attached)}
    targets = {path: target_of(client, path) for path in (idle, attached)}
    refused = client.request("DELETE", "/storage/")
    assert refused.status_code == 409
    assert "nothing was deleted" in refused.get_data(as_text=True)
    for path in (idle, attached):
        assert client.attributes(path)["occi.storage.state"] == "online"
        assert files[path].exists()
        assert read_capacity(targets[path].url()).returncode == 0


def test_every_refusal_leaves_the_volume_and_its_target_as_they_were(
        make_app, tmp_path: Path, prefix: str) -> None:
    app = make_app(storage_backend="filepool", volumes_dir=str(tmp_path / "pool"),
                   storage_capacity_gib=1, iscsi_exporter="tgt", iscsi_portal=PORTAL,
                   iscsi_iqn_prefix=prefix)
    client = Client(app)
    try:
        volume = client.storage(0.5)
        client.compute(f'Link: <{volume}>; rel="http://schemas.ogf.org/occi/infrastructure#'
                       'storage"')
        file = tmp_path / "pool" / volume_name(client.key(volume))
        target = target_of(client, volume)

        def seen() -> tuple:
            return (file.stat().st_size, client.attributes(volume),
                    read_capacity(target.url()).stdout)

        before = seen()
        for method, body, status in (
                ("POST", ["X-OCCI-Attribute: occi.storage.size=0.25"], 409),  # volumes grow
                ("POST", ["X-OCCI-Attribute: occi.storage.size=2.0"], 507),  # past the pool
                ("PUT", [category(STORAGE, "kind"),
                         "X-OCCI-Attribute: occi.storage.size=2.0"], 507),
                ("DELETE", [], 409)):  # attached
            response = client.post_text(volume, body, method=method)
            assert response.status_code == status, (method, body, response.get_data())
            assert seen() == before
        offline = client.post_text(f"{volume}?action=offline", [])
        assert offline.status_code == 409 and seen() == before
    finally:
        exporter = app.extensions["occi.service"].backends.storage.exporter
        for name in exporter.exported():
            exporter.unexport(name)


def connected(iqn: str, timeout: float = 30) -> None:
    """Wait until an initiator has a session with the target `iqn` (tgt lists its I_T nexus)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = subprocess.run(["tgtadm", "--lld", "iscsi", "--op", "show", "--mode", "target"],
                               capture_output=True, text=True, check=True).stdout
        section = shown.partition(f": {iqn}\n")[2].split("\nTarget ", 1)[0]
        if "Initiator:" in section:
            return
        time.sleep(0.1)
    raise AssertionError(f"no initiator connected to {iqn} within {timeout:g} s")


def test_a_grown_volume_reports_its_new_capacity_to_a_connected_initiator(
        client: Client, tmp_path: Path) -> None:
    """tgt cannot resize a logical unit in place; the exporter makes it again
    under a live session, which goes on reading and sees the new capacity."""
    if not shutil.which("qemu-io"):
        pytest.skip("qemu-io is not installed")
    path = client.storage(0.25)
    url = target_of(client, path).url()
    session = subprocess.Popen(["qemu-io", "-f", "raw", "-c", "sleep 3000", "-c",
                                "read -v 0 16", url], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        connected(target_of(client, path).iqn)  # the session is live before the unit is remade
        resized = client.post_text(path, ["X-OCCI-Attribute: occi.storage.size=0.5"])
        assert resized.status_code == 200, resized.get_data(as_text=True)
        out, err = session.communicate(timeout=60)
    finally:
        session.kill()
    assert session.returncode == 0 and "read 16/16 bytes" in out, out + err
    assert f"Total size:{GIB // 2}" in read_capacity(url).stdout
