"""libvirt domain and device XML, built with an XML library: every value from
a request is an element text or attribute value, never spliced into markup."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from occi_server.backends.base import IscsiTarget

METADATA_NS = "urn:occi-server:compute"
KIB_PER_GIB = 1024 * 1024
CPU_PERIOD_US = 100_000


def parse(xml: str) -> ET.Element:
    """Parse XML that libvirtd wrote (domain and device definitions): libvirt's own
    output, never a client's document, with no DTD or entities to expand."""
    return ET.fromstring(xml)  # noqa: S314 - libvirtd's output, see above


@dataclass(frozen=True)
class DomainSpec:
    name: str
    title: str
    location: str  # the compute's OCCI location, kept in the domain metadata
    memory_gib: float
    vcpus: int
    accelerator: str  # "kvm" or "qemu" (TCG)
    disk: Path
    disk_format: str
    seed: Path
    console_log: Path
    shares: int | None = None
    cpu_fraction: float | None = None  # of a host CPU each vCPU may use (from speed)
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str | None = None
    # Whose guest it is, kept in the metadata too: an adopted orphan goes back to them.
    tenant: str | None = None
    owner: str | None = None


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = text
    return element


def domain_xml(spec: DomainSpec) -> str:
    domain = ET.Element("domain", {"type": spec.accelerator})
    _sub(domain, "name", spec.name)
    _sub(domain, "title", spec.title.replace("\n", " "))
    metadata = _sub(domain, "metadata")
    ownership = {"tenant": spec.tenant, "owner": spec.owner}
    ET.SubElement(metadata, f"{{{METADATA_NS}}}entity", {
        "location": spec.location, **{k: v for k, v in ownership.items() if v}})
    memory_kib = str(max(1, round(spec.memory_gib * KIB_PER_GIB)))
    _sub(domain, "memory", memory_kib, unit="KiB")
    _sub(domain, "currentMemory", memory_kib, unit="KiB")
    _sub(domain, "vcpu", str(spec.vcpus), placement="static")
    if spec.shares or spec.cpu_fraction:
        cputune = _sub(domain, "cputune")
        if spec.shares:
            _sub(cputune, "shares", str(spec.shares))
        if spec.cpu_fraction:
            _sub(cputune, "period", str(CPU_PERIOD_US))
            _sub(cputune, "quota", str(max(1000, round(spec.cpu_fraction * CPU_PERIOD_US))))
    os_element = _sub(domain, "os")
    _sub(os_element, "type", "hvm", arch="x86_64")
    if spec.kernel is not None:
        _sub(os_element, "kernel", str(spec.kernel))
        if spec.initrd is not None:
            _sub(os_element, "initrd", str(spec.initrd))
        if spec.cmdline:
            _sub(os_element, "cmdline", spec.cmdline)
    else:
        _sub(os_element, "boot", dev="hd")
    features = _sub(domain, "features")
    _sub(features, "acpi")  # without it a guest's poweroff only halts
    _sub(features, "apic")
    if spec.accelerator == "kvm":
        _sub(domain, "cpu", mode="host-model")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")
    devices = _sub(domain, "devices")
    devices.append(disk_element(spec.disk, spec.disk_format, "vda"))
    # The seed as a CD-ROM, as clouds attach their config drive: the guest then
    # names its virtio disks in order (vda, vdb for the first volume, …).
    seed = _sub(devices, "disk", type="file", device="cdrom")
    _sub(seed, "driver", name="qemu", type="raw")
    _sub(seed, "source", file=str(spec.seed))
    _sub(seed, "target", dev="hdc", bus="ide")
    _sub(seed, "readonly")
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(spec.console_log), append="on")
    _sub(serial, "target", port="0")
    _sub(devices, "memballoon", model="virtio")
    return ET.tostring(domain, encoding="unicode")


def disk_element(path: Path, disk_format: str, target: str, *, readonly: bool = False,
                 serial: str | None = None) -> ET.Element:
    disk = ET.Element("disk", {"type": "file", "device": "disk"})
    _sub(disk, "driver", name="qemu", type=disk_format)
    _sub(disk, "source", file=str(path))
    _sub(disk, "target", dev=target, bus="virtio")
    if readonly:
        _sub(disk, "readonly")
    if serial:
        _sub(disk, "serial", serial)
    return disk


def disk_xml(path: Path, disk_format: str, target: str, serial: str) -> str:
    return ET.tostring(disk_element(path, disk_format, target, serial=serial),
                       encoding="unicode")


def iscsi_disk_xml(target: IscsiTarget, dev: str, serial: str, secret_usage: str) -> str:
    """A volume reached over iSCSI by QEMU (libiscsi), with the CHAP secret
    libvirt keeps under `secret_usage`."""
    disk = ET.Element("disk", {"type": "network", "device": "disk"})
    _sub(disk, "driver", name="qemu", type="raw")
    source = _sub(disk, "source", protocol="iscsi", name=f"{target.iqn}/{target.lun}")
    host, _, port = target.portal.rpartition(":")
    _sub(source, "host", name=host.strip("[]"), port=port)
    auth = _sub(source, "auth", username=target.user)
    _sub(auth, "secret", type="iscsi", usage=secret_usage)
    _sub(disk, "target", dev=dev, bus="virtio")
    _sub(disk, "serial", serial)
    return ET.tostring(disk, encoding="unicode")


def iscsi_secret_xml(usage: str, description: str) -> str:
    secret = ET.Element("secret", {"ephemeral": "no", "private": "no"})  # see secrets.py
    _sub(secret, "description", description)
    _sub(_sub(secret, "usage", type="iscsi"), "target", usage)
    return ET.tostring(secret, encoding="unicode")


def secret_usages(device_xml: str) -> list[str]:
    """The libvirt secrets a disk's iSCSI source names."""
    return [secret.get("usage", "") for secret in parse(device_xml).iter("secret")
            if secret.get("type") == "iscsi" and secret.get("usage")]


def interface_xml(mac: str, bridge: str, isolated: bool = False) -> str:
    """A virtio NIC on `bridge`; `isolated`: its port reaches the bridge's
    other ports only through one not isolated (the tunnel to the frontend)."""
    interface = ET.Element("interface", {"type": "bridge"})
    _sub(interface, "mac", address=mac)
    _sub(interface, "source", bridge=bridge)
    _sub(interface, "model", type="virtio")
    if isolated:
        _sub(interface, "port", isolated="yes")
    return ET.tostring(interface, encoding="unicode")


def location_of(xml: str) -> str | None:
    """The OCCI location kept in a domain's metadata, if it is one of ours."""
    return _metadata(xml).get("location")


def ownership_of(xml: str) -> tuple[str | None, str | None]:
    """(tenant, owner) kept in a domain's metadata (None for guests defined
    before they were kept)."""
    metadata = _metadata(xml)
    return metadata.get("tenant"), metadata.get("owner")


def _metadata(xml: str) -> dict[str, str]:
    entity = parse(xml).find(f"metadata/{{{METADATA_NS}}}entity")
    return {} if entity is None else dict(entity.attrib)


def direct_boot(xml: str) -> dict[str, str]:
    """The kernel, initrd and command line a domain boots with directly (empty
    when it boots from its disk)."""
    os_element = parse(xml).find("os")
    if os_element is None:
        return {}
    return {tag: element.text for tag in ("kernel", "initrd", "cmdline")
            if (element := os_element.find(tag)) is not None and element.text}


def files_of(xml: str) -> set[str]:
    """Every file a domain uses: its disks', its file consoles' and its direct-boot ones."""
    domain = parse(xml)
    found = {path for path in direct_boot(xml).values() if path.startswith("/")}
    for element in domain.iter("source"):
        found.update(value for name in ("file", "path") if (value := element.get(name)))
    return found


def resized(xml: str, vcpus: int, memory_gib: float) -> str:
    """A domain definition with other vCPU and memory sizes."""
    domain = parse(xml)
    kib = str(max(1, round(memory_gib * KIB_PER_GIB)))
    for tag in ("memory", "currentMemory"):
        element = domain.find(tag)
        if element is not None:
            element.text, element.attrib = kib, {"unit": "KiB"}
    vcpu = domain.find("vcpu")
    if vcpu is not None:
        vcpu.text = str(vcpus)
    return ET.tostring(domain, encoding="unicode")


def devices_matching(xml: str, tag: str, matches: Callable[[ET.Element], bool]) -> list[str]:
    """The XML of a domain's devices of one kind that satisfy `matches`."""
    devices = parse(xml).find("devices")
    if devices is None:
        return []
    return [ET.tostring(d, encoding="unicode") for d in devices.iter(tag) if matches(d)]


def with_isolated_ports(xml: str, isolated: bool) -> str:
    """The domain's XML with every bridge interface's port isolated or not (a
    guest moved onto a host reached through a tunnel, or off one)."""
    domain = parse(xml)
    for interface in domain.iter("interface"):
        if interface.get("type") != "bridge":
            continue
        for port in interface.findall("port"):
            interface.remove(port)
        if isolated:
            _sub(interface, "port", isolated="yes")
    return ET.tostring(domain, encoding="unicode")


def with_files(xml: str, disk: Path, seed: Path, console: Path,
               boot: dict[str, Path | None]) -> str:
    """The domain's XML with its boot disk (whole: no backing file), seed,
    console log and direct-boot files at other paths (a guest moved to a host
    that keeps them elsewhere)."""
    domain = parse(xml)
    devices = domain.find("devices")
    for device in [] if devices is None else devices.iter("disk"):
        source, target = device.find("source"), device.find("target")
        if source is None or target is None:
            continue
        if target.get("dev") == "vda":
            source.set("file", str(disk))
            for backing in device.findall("backingStore"):
                device.remove(backing)
            device.insert(list(device).index(source) + 1, ET.Element("backingStore"))
        elif device.get("device") == "cdrom":
            source.set("file", str(seed))
    for serial in [] if devices is None else devices.iter("serial"):
        source = serial.find("source")
        if serial.get("type") == "file" and source is not None:
            source.set("path", str(console))
    os_element = domain.find("os")
    for tag, path in boot.items():
        element = None if os_element is None else os_element.find(tag)
        if element is not None and path is not None:
            element.text = str(path)
    return ET.tostring(domain, encoding="unicode")
