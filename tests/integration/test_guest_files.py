"""Every kind of guest files (storage.py), one contract, against the real
libvirt daemon: files of this machine, and files a host keeps in its own
libvirt pools, sent through libvirt's storage API (the host here is the
machine's own daemon, reached as if it were elsewhere)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.backends.libvirt.hosts import Host
from occi_server.backends.libvirt.storage import (
    BootImage,
    Carried,
    GuestFiles,
    LocalFiles,
    PoolFiles,
    cache_name,
)
from occi_server.errors import BackendFailure
from tests.support.libvirt import (
    DefinedGuests,
    drop_pools,
    reachable_dir,
    unavailable_reason,
)

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")

MIB = 1024 * 1024
SEED = b"a seed ISO's bytes"


def qemu_io(path: Path, command: str, disk_format: str = "qcow2") -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-io", "-f", disk_format, "-c", command, str(path)],
                          capture_output=True, text=True, check=False)


@pytest.fixture
def work() -> Iterator[Path]:
    directory = reachable_dir("occi-guestfiles-")
    catalogue = directory / "catalogue"
    catalogue.mkdir()
    image = catalogue / "base.raw"
    image.write_bytes(b"\x5a" * (4 * MIB))
    (catalogue / "base-vmlinuz").write_bytes(b"a kernel")
    yield directory
    drop_pools(directory)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(params=["local", "pools"])
def files(request: pytest.FixtureRequest, work: Path) -> GuestFiles:
    if request.param == "local":
        return LocalFiles(work / "instances")
    return PoolFiles(Host("qemu:///system"), work / "instances", work / "catalogue",
                     work / "locks")


def image_of(work: Path) -> BootImage:
    return BootImage(work / "catalogue" / "base.raw", "raw",
                     kernel=work / "catalogue" / "base-vmlinuz")


def test_a_guests_files_are_made_read_and_removed(files: GuestFiles, work: Path) -> None:
    paths = files.make("k1", image_of(work), 8 * MIB, SEED)
    info = subprocess.run(["qemu-img", "info", "--output=json", "-U", str(paths.disk)],
                          capture_output=True, text=True, check=True).stdout
    assert '"virtual-size": 8388608' in info
    # The disk reads as its image where the guest wrote nothing.
    assert qemu_io(paths.disk, "read -P 0x5a 0 4M").returncode == 0
    assert paths.kernel is not None and paths.kernel.read_bytes() == b"a kernel"
    assert files.carried("k1") == Carried(SEED, b"") and paths.seed.read_bytes() == SEED
    assert files.log("k1") == b""
    with paths.console.open("a") as log:
        log.write("booting\n" + "x" * 50 + "ready\n")
    assert files.log("k1", 6) == b"ready\n"
    assert files.carried("k1").log.startswith(b"booting\n")

    files.remove("k1")
    assert not any(path.exists() for path in paths.own())
    assert files.log("k1", 100) == b""
    # The catalogue keeps its files whatever a host does with its copies.
    assert (work / "catalogue" / "base.raw").stat().st_size == 4 * MIB


def test_a_saved_disk_is_whole_and_holds_what_the_guest_wrote(files: GuestFiles,
                                                               work: Path) -> None:
    paths = files.make("k1", image_of(work), 8 * MIB, SEED)
    assert qemu_io(paths.disk, "write -P 0x33 1M 64k").returncode == 0
    saved = work / "catalogue" / "saved.qcow2"
    files.disk_copy("k1", saved)
    info = subprocess.run(["qemu-img", "info", "--output=json", str(saved)],
                          capture_output=True, text=True, check=True).stdout
    assert "backing-filename" not in info
    assert qemu_io(saved, "read -P 0x33 1M 64k").returncode == 0
    assert qemu_io(saved, "read -P 0x5a 0 1M").returncode == 0
    files.remove("k1")


def test_a_moving_guest_gets_an_empty_disk_its_seed_and_boot_files(files: GuestFiles,
                                                                    work: Path) -> None:
    kernel = work / "catalogue" / "base-vmlinuz"
    paths = files.receive("k2", 16 * MIB, Carried(SEED, b"its console so far\n"),
                          {"kernel": kernel})
    assert qemu_io(paths.disk, "read -P 0 0 16M").returncode == 0
    assert files.carried("k2") == Carried(SEED, b"its console so far\n")
    assert paths.kernel is not None and files.frontend_file(paths.kernel) == kernel
    files.remove("k2")
    assert not paths.disk.exists()


@pytest.fixture
def guests() -> Iterator[DefinedGuests]:
    defined = DefinedGuests("filestest")
    yield defined
    defined.close()


def test_a_host_keeps_one_copy_of_an_image_while_guests_use_it(
        work: Path, guests: DefinedGuests) -> None:
    files = PoolFiles(Host("qemu:///system"), work / "instances", work / "catalogue",
                      work / "locks")
    first = files.make("k1", image_of(work), 8 * MIB, SEED)
    cached = Path(subprocess.run(["qemu-img", "info", "--output=json", "-U", str(first.disk)],
                                 capture_output=True, text=True, check=True).stdout
                  .split('"backing-filename": "')[1].split('"')[0])
    assert cached.parent == work / "instances" / "images"
    assert cached.name == cache_name(work / "catalogue" / "base.raw")
    uploaded = cached.stat().st_ino
    guests.define("k2", files.make("k2", image_of(work), 8 * MIB, SEED))
    assert cached.stat().st_ino == uploaded  # not sent again

    # A copy cut short (an upload interrupted) is sent again, whole.
    files.remove("k1")
    assert cached.exists()  # k2 still boots from it
    with cached.open("r+b") as handle:
        handle.truncate(MIB)
    guests.define("k3", files.make("k3", image_of(work), 8 * MIB, SEED))
    assert cached.stat().st_size == 4 * MIB
    assert qemu_io(cached, "read -P 0x5a 0 4M", "raw").returncode == 0

    # A catalogue file replaced is another image: a copy of its own.
    os.utime(work / "catalogue" / "base.raw", ns=(1, 1))
    with pytest.raises(BackendFailure, match="no longer an image of the catalogue"):
        files.frontend_file(cached)
    fresh = files.make("k4", image_of(work), 8 * MIB, SEED)
    guests.define("k4", fresh)
    replaced = work / "instances" / "images" / cache_name(work / "catalogue" / "base.raw")
    assert replaced != cached and replaced.exists() and cached.exists()
    # Files no guest here uses (its host did not answer as it went) go with
    # the next guest to go; those of guests defined here stay.
    leftover = files.make("k9", image_of(work), 8 * MIB, SEED)
    guests.undefine("k4")
    files.remove("k4")
    assert not any(path.exists() for path in leftover.own())
    assert cached.exists() and not replaced.exists()  # k2 and k3 boot from the first
    assert all(path.exists() for path in files.paths("k3").own())
    for key in ("k2", "k3"):
        guests.undefine(key)
        files.remove(key)
    assert not list((work / "instances" / "images").iterdir())  # unused, gone
    assert [path.name for path in (work / "instances").iterdir() if path.is_file()] == [
        files.owner]


def test_a_directory_two_hosts_share_is_never_collected(work: Path) -> None:
    """Shared storage at the instances path (as sites set up before hosts kept
    their own files): one host cannot tell the other's guests' files from
    leftovers, so it removes its guest's own files only."""
    one = PoolFiles(Host("qemu:///system"), work / "instances", work / "catalogue",
                    work / "locks")
    other = PoolFiles(Host("qemu+unix:///system"), work / "instances", work / "catalogue",
                      work / "locks")
    theirs = other.make("k2", image_of(work), 8 * MIB, SEED)
    mine = one.make("k1", image_of(work), 8 * MIB, SEED)
    one.remove("k1")
    assert not any(path.exists() for path in mine.own())
    assert all(path.exists() for path in theirs.own())
    assert theirs.kernel is not None and theirs.kernel.exists()
