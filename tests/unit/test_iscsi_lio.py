"""The LIO exporter at its boundary: the rtslib-fb objects it builds and tears
down, against a recording stand-in for the module (kernel LIO needs configfs,
which these machines lack; the integration test in tests/integration/test_iscsi.py
runs it where it exists)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from occi_server.backends.iscsi import Credentials, LioExporter
from occi_server.errors import BackendFailure, BackendUnavailable


class FakeRtslib:
    """Records what the exporter asks of rtslib-fb."""

    def __init__(self, fail_portal: bool = False) -> None:
        self.root = SimpleNamespace(targets=[], storage_objects=[])
        self.calls: list[tuple[str, Any]] = []
        self.fail_portal = fail_portal
        fake = self

        class Deletable:
            def delete(self) -> None:
                fake.calls.append(("delete", self.name))
                for collection in (fake.root.targets, fake.root.storage_objects):
                    if self in collection:
                        collection.remove(self)

        class FileIOStorageObject(Deletable):
            def __init__(self, name: str, dev: str) -> None:
                self.name, self.dev = name, dev
                fake.root.storage_objects.append(self)
                fake.calls.append(("fileio", (name, dev)))

        class Target(Deletable):
            def __init__(self, fabric: Any, wwn: str) -> None:
                self.name = self.wwn = wwn
                fake.root.targets.append(self)
                fake.calls.append(("target", (fabric, wwn)))

        class TPG:
            def __init__(self, target: Target, tag: int) -> None:
                self.attributes: dict[str, str] = {}
                self.chap_userid = self.chap_password = None
                self.enable = False
                self.luns: list[LUN] = []
                target.tpgs = [self]
                fake.tpg = self
                fake.calls.append(("tpg", tag))

            def set_attribute(self, name: str, value: str) -> None:
                self.attributes[name] = value

        class LUN:
            def __init__(self, tpg: TPG, lun: int, storage: Any) -> None:
                self.name, self.tpg = f"lun{lun}", tpg
                tpg.luns.append(self)
                fake.calls.append(("lun", (lun, storage.name)))

            def delete(self) -> None:
                self.tpg.luns.remove(self)
                fake.calls.append(("delete", self.name))

        def network_portal(tpg: TPG, ip: str, port: int) -> None:
            if fake.fail_portal:
                raise OSError("address in use")
            fake.calls.append(("portal", (ip, port)))

        self.FileIOStorageObject = FileIOStorageObject
        self.Target = Target
        self.TPG = TPG
        self.FabricModule = lambda name: f"fabric:{name}"
        self.LUN = LUN
        self.NetworkPortal = network_portal
        self.RTSRoot = lambda: fake.root


@pytest.fixture
def credentials(tmp_path: Path) -> Credentials:
    return Credentials(tmp_path / "key", "iqn.2026-11.test.lio")


def test_export_builds_a_chap_protected_target(credentials: Credentials) -> None:
    rtslib = FakeRtslib()
    exporter = LioExporter(credentials, "192.0.2.10:3260", rtslib=rtslib)
    target = exporter.export("vol-1", Path("/pool/vol-1.img"))
    assert target.iqn == "iqn.2026-11.test.lio:vol-1" and target.lun == 0
    assert ("fileio", ("vol-1", "/pool/vol-1.img")) in rtslib.calls
    assert ("target", ("fabric:iscsi", target.iqn)) in rtslib.calls
    assert ("lun", (0, "vol-1")) in rtslib.calls and ("portal", ("192.0.2.10", 3260)) in \
        rtslib.calls
    assert rtslib.tpg.attributes == {"generate_node_acls": "1", "demo_mode_write_protect": "0",
                                     "authentication": "1"}
    assert (rtslib.tpg.chap_userid, rtslib.tpg.chap_password) == (target.user, target.secret)
    assert rtslib.tpg.enable is True
    assert exporter.exported() == {"vol-1"}
    assert exporter.export("vol-1", Path("/pool/vol-1.img")) == target  # idempotent
    assert [c for c in rtslib.calls if c[0] == "target"] == [("target", ("fabric:iscsi",
                                                                         target.iqn))]


def test_unexport_removes_target_and_backstore(credentials: Credentials) -> None:
    rtslib = FakeRtslib()
    exporter = LioExporter(credentials, "192.0.2.10:3260", rtslib=rtslib)
    exporter.export("vol-1", Path("/pool/vol-1.img"))
    exporter.unexport("vol-1")
    assert rtslib.root.targets == [] and rtslib.root.storage_objects == []
    exporter.unexport("vol-1")  # gone already: fine


def test_a_failed_export_leaves_nothing(credentials: Credentials) -> None:
    rtslib = FakeRtslib(fail_portal=True)
    exporter = LioExporter(credentials, "192.0.2.10:3260", rtslib=rtslib)
    with pytest.raises(BackendFailure, match="address in use"):
        exporter.export("vol-2", Path("/pool/vol-2.img"))
    assert rtslib.root.targets == [] and rtslib.root.storage_objects == []


def test_without_configfs_lio_is_unavailable(credentials: Credentials) -> None:
    broken = SimpleNamespace(RTSRoot=lambda: (_ for _ in ()).throw(
        RuntimeError("configfs not mounted")))
    with pytest.raises(BackendUnavailable, match="configfs"):
        LioExporter(credentials, "127.0.0.1:3260", rtslib=broken)


def test_secrets_are_stable_per_volume_and_differ_between_volumes(tmp_path: Path) -> None:
    first = Credentials(tmp_path / "key", "iqn.x")
    again = Credentials(tmp_path / "key", "iqn.x")
    assert first.secret("vol-1") == again.secret("vol-1") != first.secret("vol-2")
    assert len(first.secret("vol-1")) == 16 and (tmp_path / "key").stat().st_mode & 0o077 == 0


def test_a_grown_file_volume_gets_a_backstore_of_its_new_size(credentials: Credentials,
                                                              tmp_path: Path) -> None:
    """A fileio backstore on a file keeps the size it was made with: the LUN
    and backstore are made again on the same target and TPG (sessions stay)."""
    rtslib = FakeRtslib()
    exporter = LioExporter(credentials, "192.0.2.10:3260", rtslib=rtslib)
    volume = tmp_path / "vol-1.img"
    volume.write_bytes(b"\0" * 4096)
    exporter.export("vol-1", volume)
    tpg, before = rtslib.tpg, len(rtslib.root.targets)
    rtslib.calls.clear()
    exporter.resized("vol-1", volume)
    assert rtslib.calls == [("delete", "lun0"), ("delete", "vol-1"),
                            ("fileio", ("vol-1", str(volume))), ("lun", (0, "vol-1"))]
    assert rtslib.tpg is tpg and len(tpg.luns) == 1 and len(rtslib.root.targets) == before
    exporter.resized("vol-2", volume)  # not exported: nothing to refresh
    assert len(rtslib.calls) == 4
