"""The LVM pool at its command boundary: the lvm2 command lines it runs and how
it reads their output, against a stand-in that keeps a volume group's state
(logical volumes need device-mapper, which these machines lack;
tests/integration/test_lvm.py runs the real thing where it works)."""

from __future__ import annotations

from pathlib import Path

import pytest

from occi_server.backends.lvm import LvmStorage
from occi_server.core import Entity
from occi_server.errors import BackendFailure, InsufficientStorage
from occi_server.images import Image
from occi_server.kinds.infrastructure import STORAGE as STORAGE_KIND
from tests.support.fakelvm import FakeLvm

GIB = 1024 ** 3


def storage(volume_id: str, size: float = 1.0, key: str | None = None) -> Entity:
    return Entity(id=volume_id, key=key or volume_id,
                  kind="http://schemas.ogf.org/occi/infrastructure#storage",
                  location=f"/storage/{volume_id}",
                  attributes={"occi.storage.size": size, "occi.storage.state": "online"})


@pytest.fixture
def lvm() -> FakeLvm:
    return FakeLvm()


@pytest.fixture
def pool(lvm: FakeLvm, tmp_path: Path) -> LvmStorage:
    return LvmStorage("vg0", tmp_path / "backups", runner=lvm)


def test_create_grow_and_the_exact_commands(pool: LvmStorage, lvm: FakeLvm) -> None:
    attributes = pool.create(storage("v1", 2.0))
    assert attributes["occi.storage.state"] == "online"
    assert ["lvcreate", "--yes", "--wipesignatures", "y", "--name", "vol-v1", "--size",
            f"{2 * GIB}b", "vg0"] in lvm.commands
    pool.update(storage("v1"), {"occi.storage.size": 3.0})
    assert ["lvextend", "--size", f"{3 * GIB}b", "vg0/vol-v1"] in lvm.commands
    with pytest.raises(BackendFailure, match="only grow"):
        pool.update(storage("v1"), {"occi.storage.size": 1.0})
    source = pool.source(storage("v1"))
    assert source is not None and (source.path, source.format) == ("/dev/vg0/vol-v1", "raw")
    assert pool.names() == {"vol-v1"}  # the group's other volumes are not ours


def test_capacity_of_the_volume_group(pool: LvmStorage) -> None:
    pool.create(storage("v1", 8.0))
    with pytest.raises(InsufficientStorage, match="8 of 10 GiB"):
        pool.create(storage("v2", 3.0))


def test_snapshot_is_an_lvm_cow_snapshot(pool: LvmStorage, lvm: FakeLvm) -> None:
    pool.create(storage("v1", 1.0))
    pool.snapshot(storage("v1"), storage("v2"))
    assert ["lvcreate", "--yes", "--snapshot", "--name", "vol-v2", "--size", f"{GIB}b",
            "vg0/vol-v1"] in lvm.commands


def test_quarantine_reap_and_restore(pool: LvmStorage, lvm: FakeLvm) -> None:
    pool.create(storage("v1", 1.0))
    pool.delete(storage("v1"))
    [(name, stamp)] = pool.aside()
    assert name == "vol-v1" and f"vol-v1.q{stamp}" in lvm.lvs and pool.names() == set()
    assert pool.restore("v1") == GIB and pool.names() == {"vol-v1"}
    pool.delete(storage("v1"))
    [(_, second)] = pool.aside()
    assert pool.reap(now=second + pool.grace_seconds + 60) == ["vol-v1"]
    assert ["lvremove", "--yes", f"vg0/vol-v1.q{second}"] in lvm.commands
    assert set(lvm.lvs) == {"swap"}


def test_whose_volume_it_is_follows_it_through_quarantine_and_adoption(
        pool: LvmStorage, lvm: FakeLvm) -> None:
    tenant, owner = "vo.example.org", "/DC=org/DC=example/CN=Jo Doe, Ünï"
    pool.create(Entity(id="my.data", key="v1", kind=STORAGE_KIND.type_id,
                       location="/storage/my.data", tenant=tenant, owner=owner,
                       attributes={"occi.storage.size": 1.0}))
    assert pool.owner("vol-v1") == (tenant, owner, "my.data")
    pool.delete(storage("my.data", key="v1"))
    pool.restore("v1")
    adopted = pool.adopt_orphan("vol-v1")
    assert adopted is not None
    assert (adopted.tenant, adopted.owner, adopted.id, adopted.key) == (
        tenant, owner, "my.data", "v1")
    pool.create(storage("v2"))  # no tenant given (a contract test): nothing kept
    assert pool.owner("vol-v2") == (None, None, None)
    assert not any(c[0] == "lvchange" and c[-1] == "vg0/vol-v2" for c in lvm.commands)


def test_hostile_ids_never_reach_a_command_line(pool: LvmStorage, lvm: FakeLvm) -> None:
    pool.create(storage("--help; rm -rf /", 0.5, key="5eed5eed5eed"))
    created = next(c for c in lvm.commands if c[0] == "lvcreate")
    assert created[created.index("--name") + 1] == "vol-5eed5eed5eed"
    with pytest.raises(BackendFailure, match="not a volume key"):
        pool.create(storage("v2", 0.5, key="--help; rm -rf /"))
    assert [c for c in lvm.commands if c[0] == "lvcreate"] == [created]


def test_volume_group_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(BackendFailure, match="volume group"):
        LvmStorage("vg0 --force", tmp_path, runner=FakeLvm())


def test_a_create_lists_the_group_a_bounded_number_of_times(pool: LvmStorage,
                                                             lvm: FakeLvm) -> None:
    for number in range(5):
        pool.create(storage(f"v{number}", 0.5))
    lvm.commands.clear()
    pool.create(storage("v-last", 0.5))
    assert sum(1 for c in lvm.commands if c[0] == "lvs") <= 3  # not one per volume


def test_a_clone_is_the_image_copied_into_a_new_volume(pool: LvmStorage, lvm: FakeLvm,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def qemu_img(*args: str, doing: str, **_: object) -> str:
        lvm.commands.append(["qemu-img", *args])
        return ""

    monkeypatch.setattr("occi_server.backends.lvm.qemu_img", qemu_img)
    image = Image("deb", "Debian", info={"disk": "/images/deb.qcow2", "format": "qcow2"})
    attributes = pool.create(storage("v1", 2.0), image)
    assert "cloned from image deb" in attributes["occi.storage.state.message"]
    assert lvm.commands[-2:] == [
        ["lvcreate", "--yes", "--wipesignatures", "y", "--name", "vol-v1", "--size",
         f"{2 * GIB}b", "vg0"],
        ["qemu-img", "convert", "-n", "-f", "qcow2", "-O", "raw", "/images/deb.qcow2",
         "/dev/vg0/vol-v1"]]


def test_a_clone_that_cannot_be_copied_leaves_no_volume(pool: LvmStorage, lvm: FakeLvm,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def qemu_img(*args: str, doing: str, **_: object) -> str:
        raise BackendFailure(f"{doing} failed: Could not open '/images/deb.qcow2'")

    monkeypatch.setattr("occi_server.backends.lvm.qemu_img", qemu_img)
    image = Image("deb", "Debian", info={"disk": "/images/deb.qcow2", "format": "qcow2"})
    with pytest.raises(BackendFailure, match="Could not open"):
        pool.create(storage("v1", 2.0), image)
    assert pool.names() == set() and ["lvremove", "--yes", "vg0/vol-v1"] in lvm.commands
