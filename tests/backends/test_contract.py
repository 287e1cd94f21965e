"""The behaviour every backend promises (occi_server.backends.base), run
against each implementation. Real backends join the parameter list."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from occi_server.backends.base import Backends, Context, Rule, VolumeSource
from occi_server.backends.simulated import simulated_backends
from occi_server.core import Entity
from occi_server.errors import BackendFailure, Conflict
from occi_server.images import Image
from tests.conftest import COMPUTE, NETWORK, NETWORKINTERFACE, STORAGE, STORAGELINK
from tests.support.fakelvm import FakeLvm
from tests.support.iscsi import PORTAL, tgt_unavailable_reason
from tests.support.libvirt import link_images, reachable_dir, unavailable_reason

PUBLIC = "http://schemas.occi-server.org/occi/infrastructure/network#public"


def simulated(failures: list[str] | None = None, directory: Path | None = None) -> Backends:
    """The fake infrastructure in this process's memory, or, as `serve` runs
    it, in files of `directory` that every process shares."""
    return simulated_backends([{"term": "img", "title": "Image"}], failures or [],
                              directory=directory)


def libvirt_compute() -> Iterator[Backends]:
    """Compute on the local libvirt with the tiny image; storage and network simulated."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    from occi_server.backends.libvirt.accel import Accelerator
    from occi_server.backends.libvirt.backend import LibvirtCompute
    from occi_server.images.catalogue import ImageCatalogue
    base = reachable_dir("occi-contract-")
    catalogue = ImageCatalogue(link_images(base))
    compute_backend = LibvirtCompute(["qemu:///system"], base / "instances", catalogue,
                                     Accelerator("qemu", "contract tests"), shutdown_timeout=20)
    rest = simulated()
    yield Backends(compute_backend, rest.storage, rest.network, catalogue)
    compute_backend.delete(compute())
    shutil.rmtree(base, ignore_errors=True)


def filepool_storage(exported: bool = False) -> Iterator[Backends]:
    """Storage in a file pool (each volume exported by the real tgtd when
    `exported`); compute and network simulated."""
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (scripts/setup.sh installs it)")
    if exported and tgt_unavailable_reason():
        pytest.skip(tgt_unavailable_reason() or "")
    from occi_server.backends.filepool import FilePoolStorage
    from occi_server.backends.iscsi import Credentials, TgtExporter
    base = reachable_dir("occi-pool-")
    exporter = TgtExporter(Credentials(base / "key", f"iqn.2026-12.test.contract-{os.getpid()}"),
                           PORTAL) if exported else None
    rest = simulated()
    pool = FilePoolStorage(base / "pool", base / "quarantine", exporter=exporter)
    yield Backends(rest.compute, pool, rest.network, rest.images)
    if exporter is not None:
        assert exporter.exported() == set(), "a volume of the contract is still exported"
    shutil.rmtree(base, ignore_errors=True)


def lvm_storage(monkeypatch: pytest.MonkeyPatch) -> Iterator[Backends]:
    """Storage in an LVM volume group, at its command boundary (tests/support/fakelvm.py:
    device-mapper is missing here; tests/integration/test_lvm.py runs lvm2 where it works).
    With no block devices, copies (backups, clones) are recorded, not made."""
    from occi_server.backends import lvm
    from occi_server.backends.lvm import LvmStorage
    monkeypatch.setattr(lvm, "qemu_img", lambda *args, **kwargs: "")
    base = reachable_dir("occi-lvm-")
    rest = simulated()
    yield Backends(rest.compute, LvmStorage("vg0", base / "backups", runner=FakeLvm()),
                   rest.network, rest.images)
    shutil.rmtree(base, ignore_errors=True)


def bridge_network() -> Iterator[Backends]:
    """The network on Linux bridges in a namespace of its own; compute and storage simulated."""
    if os.geteuid() != 0 or shutil.which("dnsmasq") is None:
        pytest.skip("bridges need root and dnsmasq (scripts/setup.sh installs it)")
    from occi_server.backends.bridge import bridge_network as load_bridge_network
    from occi_server.config import load_config
    namespace, base = f"occi-contract-{os.getpid()}", reachable_dir("occi-net-")
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    rest = simulated()
    try:
        yield Backends(rest.compute, rest.storage, load_bridge_network(load_config(
            environ={}, backend="simulated", network_namespace=namespace,
            networks_dir=str(base))), rest.images)
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["simulated", "simulated-files", "libvirt", "filepool", "filepool+tgt",
                        "lvm", "bridge"])
def backends(request) -> Iterator[Backends]:
    if request.param == "simulated":
        yield simulated()
    elif request.param == "simulated-files":
        yield simulated(directory=request.getfixturevalue("tmp_path"))
    elif request.param == "libvirt":
        yield from libvirt_compute()
    elif request.param == "filepool":
        yield from filepool_storage()
    elif request.param == "filepool+tgt":
        yield from filepool_storage(exported=True)
    elif request.param == "lvm":
        yield from lvm_storage(request.getfixturevalue("monkeypatch"))
    else:
        yield from bridge_network()


@pytest.fixture
def volume_dir() -> Iterator[Path]:
    """A directory QEMU (user libvirt-qemu) can reach."""
    directory = reachable_dir("occi-volume-")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def compute(state: str = "inactive") -> Entity:
    return Entity(id="contract-c1", key="c0417ac7c001", kind=COMPUTE,
                  location="/compute/contract-c1",
                  attributes={"occi.core.id": "contract-c1", "occi.compute.cores": 1,
                              "occi.compute.memory": 0.25, "occi.compute.state": state,
                              "occi.core.title": "contract"})


def network() -> Entity:
    return Entity(id="n1", key="c0417ac7a001", kind=NETWORK, location="/network/n1",
                  mixins=["http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"],
                  attributes={"occi.core.id": "n1", "occi.network.state": "inactive",
                              "occi.network.address": "10.77.0.0/24",
                              "occi.network.gateway": "10.77.0.1",
                              "occi.network.allocation": "dynamic"})


def storage() -> Entity:
    return Entity(id="s1", key="c0417ac75001", kind=STORAGE, location="/storage/s1",
                  attributes={"occi.core.id": "s1", "occi.storage.size": 1.0,
                              "occi.storage.state": "offline"})


def test_compute_lifecycle(backends: Backends) -> None:
    guest = compute()
    image = next(i for i in backends.images.images() if i.term in ("img", "tiny"))
    created = backends.compute.create(guest, image, Context(ssh_keys=("ssh-ed25519 AAAA",),
                                                            user_data=b"#!/bin/sh\n"))
    assert created["occi.compute.state"] == "active"
    guest.attributes.update(created)
    for action, expected in [("stop", "inactive"), ("start", "active"),
                             ("suspend", "suspended"), ("start", "active"),
                             ("restart", "active")]:
        outcome = backends.compute.act(guest, action, {"method": None})
        assert outcome.attributes["occi.compute.state"] == expected, action
        guest.attributes.update(outcome.attributes)
    backends.compute.delete(guest)
    backends.compute.delete(guest)  # deleting what is gone succeeds


def test_save_produces_an_image(backends: Backends) -> None:
    guest = running(backends)
    outcome = backends.compute.act(guest, "save", {"method": "hot", "name": "golden"})
    assert outcome.image is not None and outcome.image.title == "golden"
    assert outcome.attributes["occi.compute.state"] == "active"


def running(backends: Backends) -> Entity:
    guest = compute()
    image = next(i for i in backends.images.images() if i.term in ("img", "tiny"))
    guest.attributes.update(backends.compute.create(guest, image, Context()))
    return guest


def test_storage_lifecycle(backends: Backends) -> None:
    volume = storage()
    volume.attributes.update(backends.storage.create(volume))
    assert volume.attributes["occi.storage.state"] == "online"
    source = backends.storage.source(volume)
    assert source is None or source.path is not None
    volume.attributes.update(backends.storage.act(volume, "offline", {}).attributes)
    assert volume.attributes["occi.storage.state"] == "offline"
    assert backends.storage.source(volume) is None  # an offline volume is not attachable
    backends.storage.update(volume, {"occi.storage.size": 2.0})
    copy = Entity(id="contract-s2", key="c0417ac75002", kind=STORAGE,
                  location="/storage/contract-s2",
                  attributes={"occi.core.id": "contract-s2", "occi.storage.size": 2.0})
    assert backends.storage.snapshot(volume, copy)["occi.storage.state"] == "online"
    assert "occi.storage.state.message" in backends.storage.backup(volume)
    for gone in (copy, volume, volume):  # deleting what is gone succeeds
        backends.storage.delete(gone)


def test_storage_cloned_from_an_image(backends: Backends, volume_dir: Path,
                                      request: pytest.FixtureRequest) -> None:
    if request.node.callspec.params["backends"] == "lvm":
        pytest.skip("the LVM stand-in has no block device to copy an image into "
                    "(tests/unit/test_lvm.py checks the copy's command)")
    disk = volume_dir / "golden.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 1M", str(disk)], check=True,
                   capture_output=True)
    image = Image("golden", "Golden", info={"disk": str(disk), "format": "qcow2",
                                            "virtual_size": 64 << 20})
    volume = storage()
    volume.attributes["occi.storage.size"] = 0.125
    created = backends.storage.create(volume, image)
    assert created["occi.storage.state"] == "online"
    assert "golden" in created["occi.storage.state.message"]
    volume.attributes.update(created)
    source = backends.storage.source(volume)
    if source is not None:  # a real volume: the image's bytes, at the size asked for
        assert source.path is not None
        with open(source.path, "rb") as handle:
            assert handle.read(4096) == b"\x5a" * 4096
            assert handle.seek(0, os.SEEK_END) == 128 << 20
    backends.storage.delete(volume)
    assert backends.storage.source(volume) is None


def test_network_lifecycle_and_binding(backends: Backends) -> None:
    net, guest = network(), running(backends)
    net.attributes.update(backends.network.create(net))
    assert net.attributes["occi.network.state"] == "active"
    nic = Entity(id="l1", key="c0417ac71001", kind=NETWORKINTERFACE,
                 location="/link/networkinterface/l1",
                 source=guest.location, target=net.location,
                 attributes={"occi.networkinterface.mac": "52:54:00:12:34:56",
                             "occi.networkinterface.address": "10.77.0.23"})
    nic.attributes.update(backends.network.bind(nic, net))
    assert nic.attributes["occi.networkinterface.mac"] == "52:54:00:12:34:56"
    bridge = backends.network.bridge(net)
    if bridge is None and not backends.compute.simulated:
        with pytest.raises(BackendFailure, match=net.location):  # nowhere to plug it in
            backends.compute.attach_network(guest, nic, net, bridge)
    else:
        assert backends.compute.attach_network(guest, nic, net, bridge)[
            "occi.networkinterface.state"] == "active"
    backends.compute.detach_network(guest, nic)
    backends.network.unbind(nic, net)
    assert backends.network.act(net, "down", {}).attributes["occi.network.state"] == "inactive"
    backends.network.delete(net)


def test_interface_filters_are_replaced_and_removed(backends: Backends) -> None:
    net = network()
    net.attributes.update(backends.network.create(net))
    nic = Entity(id="l2", key="c0417ac71002", kind=NETWORKINTERFACE,
                 location="/link/networkinterface/l2", target=net.location,
                 attributes={"occi.networkinterface.mac": "52:54:00:12:34:57"})
    ssh = [Rule("inbound", "tcp", "0.0.0.0/0", (22, 22))]
    backends.network.guard(nic, net, ssh)
    backends.network.guard(nic, net, [*ssh, Rule("outbound", "udp", "10.0.0.0/8", (53, 53))])
    assert backends.network.guarded() == {nic.key}
    backends.network.unguard(nic.key)
    backends.network.unguard(nic.key)  # removing what is gone succeeds
    assert backends.network.guarded() == set()
    with pytest.raises(BackendFailure):  # a MAC the filter could not match
        backends.network.guard(replace(nic, attributes={}), net, ssh)
    backends.network.delete(net)


def test_reserved_addresses_are_published_and_withdrawn(backends: Backends) -> None:
    net = network()
    net.attributes.update(backends.network.create(net))
    if backends.network.name == "bridge":  # no uplink here: nothing can be published
        with pytest.raises(Conflict, match="uplink"):
            backends.network.publish("c0417ac7e001", "192.0.2.129", "10.77.0.2", net)
    else:
        with pytest.raises(BackendFailure, match="not a public network"):
            backends.network.publish("c0417ac7e001", "192.0.2.129", "10.77.0.2", net)
        public = replace(net, mixins=[*net.mixins, PUBLIC])
        backends.network.publish("c0417ac7e001", "192.0.2.129", "10.77.0.2", public)
        assert backends.network.published() == {"c0417ac7e001": "192.0.2.129"}
    backends.network.unpublish("c0417ac7e001", "192.0.2.129")
    backends.network.unpublish("c0417ac7e001", "192.0.2.129")  # gone already: fine
    assert backends.network.published() == {}
    backends.network.delete(net)


def test_storage_attachment(backends: Backends, volume_dir: Path) -> None:
    guest, volume = running(backends), storage()
    disk = volume_dir / "volume.raw"
    with disk.open("wb") as handle:
        handle.truncate(16 * 1024 * 1024)
    link = Entity(id="contract-l2", key="c0417ac71002", kind=STORAGELINK,
                  location="/link/storagelink/contract-l2",
                  source=guest.location, target=volume.location,
                  attributes={"occi.storagelink.deviceid": "/dev/vdb"})
    source = VolumeSource(path=str(disk), format="raw")
    assert backends.compute.attach_storage(guest, link, volume, source)[
        "occi.storagelink.state"] == "active"
    backends.compute.detach_storage(guest, link)
    backends.compute.detach_storage(guest, link)  # detaching what is gone succeeds


@pytest.mark.parametrize("operation", ["compute.create", "storage.create", "network.create"])
def test_failures_are_reported_as_backend_failure(operation: str) -> None:
    failing = simulated([operation])
    with pytest.raises(BackendFailure, match=operation):
        if operation == "compute.create":
            failing.compute.create(compute(), None, Context())
        elif operation == "storage.create":
            failing.storage.create(storage())
        else:
            failing.network.create(network())


def test_simulated_backends_say_so() -> None:
    assert simulated().simulated


def test_of_processes_making_one_guest_at_once_one_makes_it(tmp_path: Path) -> None:
    """Each process of the service has a simulation of its own over the same
    files; making one key at once in several, exactly one succeeds, and the
    others are refused as a real hypervisor refuses a second domain of a name."""
    makers, keys = 8, [f"c0417ac7c{number:03d}" for number in range(20)]
    for key in keys:
        outcomes = _made_at_once(replace(compute(), key=key),
                                 [simulated(directory=tmp_path) for _ in range(makers)])
        assert outcomes.count("made") == 1
        assert outcomes.count(f"a guest named {key} exists already") == makers - 1
    # Nothing but the guests: no file left half-made.
    assert sorted(path.name for path in (tmp_path / "guests").iterdir()) == [
        f"{key}.json" for key in keys]


def _made_at_once(guest: Entity, makers: list[Backends]) -> list[str]:
    """What each of `makers` answered, making `guest` at the same moment."""
    start = threading.Barrier(len(makers))
    outcomes: list[str] = []

    def make(backends: Backends) -> None:
        start.wait()
        try:
            backends.compute.create(guest, None, Context())
            outcomes.append("made")
        except BackendFailure as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=make, args=(maker,)) for maker in makers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_acting_on_what_was_never_made_fails(backends: Backends) -> None:
    """A real backend cannot stop a guest, take a volume offline or bring a
    network down that does not exist; neither may the fake."""
    for area, entity, action in ((backends.compute, compute("active"), "stop"),
                                 (backends.storage, storage(), "offline"),
                                 (backends.network, network(), "down")):
        with pytest.raises(BackendFailure):
            area.act(entity, action, {"method": None})


def test_volumes_only_grow(backends: Backends) -> None:
    volume = storage()
    volume.attributes.update(backends.storage.create(volume))
    try:
        with pytest.raises(BackendFailure, match="grow"):
            backends.storage.update(volume, {"occi.storage.size": 0.5})
        backends.storage.update(volume, {"occi.storage.size": 2.0})
    finally:
        backends.storage.delete(volume)


def test_nothing_plugs_into_a_guest_that_was_never_made(backends: Backends) -> None:
    guest, volume = compute("active"), storage()
    link = Entity(id="contract-l3", key="c0417ac71003", kind=STORAGELINK,
                  location="/link/storagelink/contract-l3", source=guest.location,
                  target=volume.location, attributes={"occi.storagelink.deviceid": "/dev/vdb"})
    with pytest.raises(BackendFailure):
        backends.compute.attach_storage(guest, link, volume, None)
    backends.compute.detach_storage(guest, link)  # detaching from nothing succeeds


def test_a_volume_is_made_once(backends: Backends) -> None:
    """Making a volume over one that exists would lose its bytes: refused."""
    volume = storage()
    volume.attributes.update(backends.storage.create(volume))
    try:
        with pytest.raises(BackendFailure):
            backends.storage.create(volume)
        # The refusal left the volume that was there: it still answers.
        assert backends.storage.act(volume, "offline", {}).attributes[
            "occi.storage.state"] == "offline"
    finally:
        backends.storage.delete(volume)
