"""The libvirt backend's pure parts: domain XML, seed contents, image catalogue."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from occi_server.backends.base import IscsiTarget
from occi_server.backends.libvirt.domain import (
    DomainSpec,
    devices_matching,
    domain_xml,
    interface_xml,
    iscsi_disk_xml,
    iscsi_secret_xml,
    location_of,
    ownership_of,
    resized,
    secret_usages,
    with_files,
)
from occi_server.backends.libvirt.hosts import Host
from occi_server.backends.libvirt.seed import meta_data
from occi_server.backends.libvirt.storage import LocalFiles, PoolFiles, files_on
from occi_server.images.catalogue import ImageCatalogue

HOSTILE = "a'><disk type=\"file\"><source file=\"/etc/shadow\"/></disk><x a='"


def spec(**overrides) -> DomainSpec:
    values = dict(name="occi-1", title="web", location="/compute/1", memory_gib=0.5, vcpus=2,
                  accelerator="qemu", disk=Path("/i/1/disk.qcow2"), disk_format="qcow2",
                  seed=Path("/i/1/seed.iso"), console_log=Path("/i/1/console.log"))
    return DomainSpec(**{**values, **overrides})


def test_domain_xml_carries_the_request_values() -> None:
    domain = ET.fromstring(domain_xml(spec(shares=512, kernel=Path("/img/k"),
                                           initrd=Path("/img/i"), cmdline="console=ttyS0")))
    assert domain.get("type") == "qemu"
    assert domain.findtext("memory") == str(512 * 1024)
    assert domain.findtext("vcpu") == "2"
    assert domain.findtext("cputune/shares") == "512"
    assert domain.findtext("os/kernel") == "/img/k"
    assert domain.find("features/acpi") is not None
    disks = domain.findall("devices/disk")
    assert [(d.get("device"), d.find("target").get("dev")) for d in disks] == [
        ("disk", "vda"), ("cdrom", "hdc")]
    assert disks[1].find("readonly") is not None
    assert domain.find("devices/serial/source").get("path") == "/i/1/console.log"


def test_a_moving_guests_definition_names_its_files_at_the_destination() -> None:
    xml = domain_xml(spec(kernel=Path("/img/k"), initrd=Path("/img/i")))
    domain = ET.fromstring(xml)
    domain.find("devices").append(ET.fromstring(iscsi_disk_xml(
        IscsiTarget("iqn.2026-01.org.example:v1", "10.0.0.1:3260", 1, "u", "s"), "vdb",
        "serial", "occi-iqn")))
    moved = ET.fromstring(with_files(ET.tostring(domain, encoding="unicode"),
                                     Path("/h/1.qcow2"), Path("/h/1.seed.iso"),
                                     Path("/h/1.console.log"),
                                     {"kernel": Path("/h/images/k"), "initrd": None}))
    boot, seed, volume = moved.findall("devices/disk")
    assert boot.find("source").get("file") == "/h/1.qcow2"
    assert boot.find("backingStore") is not None and len(boot.find("backingStore")) == 0
    assert seed.find("source").get("file") == "/h/1.seed.iso"
    assert volume.find("source").get("name") == "iqn.2026-01.org.example:v1/1"  # untouched
    assert moved.find("devices/serial/source").get("path") == "/h/1.console.log"
    assert (moved.findtext("os/kernel"), moved.findtext("os/initrd")) == ("/h/images/k",
                                                                          "/img/i")


def test_speed_becomes_a_cpu_bandwidth_cap() -> None:
    domain = ET.fromstring(domain_xml(spec(cpu_fraction=0.5)))
    assert (domain.findtext("cputune/period"), domain.findtext("cputune/quota")) == (
        "100000", "50000")


def test_hostile_values_stay_values() -> None:
    xml = domain_xml(spec(title=HOSTILE, location="/compute/" + HOSTILE, tenant=HOSTILE,
                          owner="/DC=org/CN=" + HOSTILE))
    domain = ET.fromstring(xml)
    assert domain.findtext("title") == HOSTILE
    assert len(domain.findall("devices/disk")) == 2
    assert location_of(xml) == "/compute/" + HOSTILE
    assert ownership_of(xml) == (HOSTILE, "/DC=org/CN=" + HOSTILE)
    assert ownership_of(domain_xml(spec())) == (None, None)


def test_interface_and_resize() -> None:
    interface = ET.fromstring(interface_xml("52:54:00:00:00:01", "br0"))
    assert interface.find("source").get("bridge") == "br0"
    bigger = ET.fromstring(resized(domain_xml(spec()), 4, 2.0))
    assert (bigger.findtext("vcpu"), bigger.findtext("memory")) == ("4", str(2 * 1024 * 1024))
    assert len(devices_matching(domain_xml(spec()), "disk",
                                lambda d: d.find("readonly") is not None)) == 1


def test_meta_data_quotes_what_it_is_given() -> None:
    text = meta_data("id-1", "host1", ("ssh-ed25519 AAAA a@b", 'x"\nmalicious: 1'))
    assert text.splitlines() == ['instance-id: "id-1"', 'local-hostname: "host1"',
                                 "public-keys:", '  - "ssh-ed25519 AAAA a@b"',
                                 '  - "x\\"\\nmalicious: 1"']


# magic, version 3, no backing file, 64 KiB clusters, then the guest-visible size
QCOW2_HEADER_3_GIB = b"QFI\xfb" + (3).to_bytes(4, "big") + bytes(12) + (16).to_bytes(4, "big") \
    + (3 << 30).to_bytes(8, "big")


def test_catalogue_follows_the_directory(tmp_path: Path) -> None:
    catalogue = ImageCatalogue(tmp_path)
    assert catalogue.images() == []
    (tmp_path / "deb.qcow2").write_bytes(QCOW2_HEADER_3_GIB)
    (tmp_path / "deb.json").write_text(json.dumps({"title": "Debian", "disk": "deb.qcow2"}))
    assert [i.term for i in catalogue.images()] == ["deb"]
    assert catalogue.images()[0].info["virtual_size"] == 3 << 30
    (tmp_path / "bad.json").write_text(json.dumps({"disk": "../../etc/passwd"}))
    (tmp_path / "Caps.json").write_text(json.dumps({"disk": "deb.qcow2"}))
    assert [i.term for i in catalogue.images()] == ["deb"]
    (tmp_path / "deb.json").unlink()
    assert catalogue.images() == []


@pytest.mark.parametrize("metadata", [{"disk": "missing.qcow2"}, {"disk": "x", "format": "vmdk"},
                                      {"disk": "x", "format": "qcow2"}])
def test_catalogue_refuses_broken_images(tmp_path: Path, metadata: dict) -> None:
    (tmp_path / "x").write_bytes(b"")
    (tmp_path / "img.json").write_text(json.dumps(metadata))
    assert ImageCatalogue(tmp_path).images() == []


def test_catalogue_verifies_checksums(tmp_path: Path) -> None:
    (tmp_path / "a.raw").write_bytes(b"image bytes")
    good = hashlib.sha256(b"image bytes").hexdigest()
    (tmp_path / "a.json").write_text(json.dumps({"disk": "a.raw", "format": "raw",
                                                 "sha256": good}))
    (tmp_path / "b.raw").write_bytes(b"tampered")
    (tmp_path / "b.json").write_text(json.dumps({"disk": "b.raw", "format": "raw",
                                                 "sha256": good}))
    assert [i.term for i in ImageCatalogue(tmp_path).images()] == ["a"]


def test_an_iscsi_disk_names_its_target_and_secret() -> None:
    target = IscsiTarget(iqn="iqn.2026-11.org.example:vol-a", portal="[::1]:3260", lun=1,
                         user="u1", secret="never-in-the-xml")
    xml = iscsi_disk_xml(target, "vdc", "link-1", "occi-iqn.2026-11.org.example:vol-a")
    disk = ET.fromstring(xml)
    source = disk.find("source")
    assert (disk.get("type"), source.get("protocol"), source.get("name")) == (
        "network", "iscsi", "iqn.2026-11.org.example:vol-a/1")
    assert source.find("host").attrib == {"name": "::1", "port": "3260"}
    assert source.find("auth").get("username") == "u1"
    assert secret_usages(xml) == ["occi-iqn.2026-11.org.example:vol-a"]
    assert "never-in-the-xml" not in xml  # libvirt keeps the secret itself
    secret = ET.fromstring(iscsi_secret_xml("occi-x", 'a "title" <b>'))
    assert secret.findtext("usage/target") == "occi-x"
    assert secret.findtext("description") == 'a "title" <b>'


class _LateGuest:
    """A guest whose OS listens for the power button only from its second press on."""

    def __init__(self) -> None:
        self.presses = 0

    def shutdownFlags(self, flags: int) -> None:
        self.presses += 1

    def isActive(self) -> bool:
        return self.presses < 2


def test_a_graceful_stop_presses_the_button_again(monkeypatch) -> None:
    """A press early in the guest's boot is lost; the stop presses again rather
    than wait out the whole shutdown timeout and pull the plug."""
    from occi_server.backends.libvirt import backend

    monkeypatch.setattr(backend, "SHUTDOWN_RETRY_SECONDS", 0.3)
    guest = _LateGuest()
    assert backend.LibvirtCompute._shut_down(guest, 0, timeout=5)
    assert guest.presses == 2
    stubborn = _LateGuest()
    stubborn.isActive = lambda: True  # never obeys: the caller powers it off
    assert not backend.LibvirtCompute._shut_down(stubborn, 0, timeout=1)
    assert stubborn.presses >= 3


@pytest.mark.parametrize(("uri", "kept_here"), [
    ("qemu:///system", True), ("qemu+unix:///system?socket=/run/x/libvirt-sock", True),
    ("qemu+tcp://localhost/system", True), ("qemu+ssh://root@node2:22/system", False),
    ("qemu+tls://10.0.0.2/system", False)])
def test_a_host_elsewhere_keeps_its_guests_files_in_its_own_pools(uri: str,
                                                                  kept_here: bool) -> None:
    files = files_on(Host(uri), Path("/srv/instances"), Path("/srv/images"))
    assert isinstance(files, LocalFiles) is kept_here
    assert isinstance(files, PoolFiles) is not kept_here
    assert files.paths("k").disk == (Path("/srv/instances/k/disk.qcow2") if kept_here
                                     else Path("/srv/instances/k.qcow2"))
