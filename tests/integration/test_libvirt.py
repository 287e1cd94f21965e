"""Compute on real libvirt + QEMU: the tiny test guest, built from Debian
packages, boots through the OCCI API and reports what it received."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from occi_server.backends.filepool import volume_name
from occi_server.config import load_config
from occi_server.http import create_app
from occi_server.service import Reconciler
from tests.conftest import COMPUTE, COMPUTE_ACTION, SITE, STORAGE, Client, category
from tests.support.iscsi import PORTAL, tgt_unavailable_reason
from tests.support.libvirt import unavailable_reason

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

TINY = SITE + "os_tpl#tiny"
USER_DATA = b"#cloud-config\nruncmd:\n  - echo hello from user data\n"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOcci test@occi-server"


# Guests larger than any host, so that the hypervisor refuses them, are not
# refused by the quotas first.
OVERSIZE_ALLOWED = {"default": {"cores": -1, "memory": -1}}

pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")


def libvirt_app(data_dir: Path, **settings: Any) -> Flask:
    """A site whose computes are real guests (TCG), with the reconciler off."""
    return create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt", data_dir=str(data_dir),
        site_scheme=SITE, accelerator="tcg", reconcile_seconds=0,
        **{"shutdown_timeout": 30, **settings}))


@pytest.fixture
def client(data_dir: Path) -> Iterator[Client]:
    app = libvirt_app(data_dir, quotas=OVERSIZE_ALLOWED)
    yield Client(app)
    remove_guests(data_dir)
    app.extensions["occi.store"].dispose()


def remove_guests(data_dir: Path, uris: tuple[str, ...] = ("qemu:///system",)) -> None:
    """Nothing of a failed test lingers: the guests whose disks are in data_dir
    go. Their QEMU processes are killed first, all at once (libvirt's destroy
    takes about 2 s a guest here, waiting on each QEMU in turn); libvirt sees
    them end."""
    for uri in uris:
        ours = [domain for domain in libvirt.open(uri).listAllDomains(0)
                if domain.name().startswith("occi-")
                and (data_dir / "instances" / domain.name().removeprefix("occi-")).exists()]
        for domain in ours:
            pid_file = Path("/run/libvirt/qemu") / f"{domain.name()}.pid"
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
        deadline = time.monotonic() + 30
        for domain in ours:
            while domain.isActive() and time.monotonic() < deadline:
                time.sleep(0.05)
            if domain.isActive():
                domain.destroy()
            domain.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE)


def boot(client: Client, *lines: str, mixins: tuple[str, ...] = ()) -> str:
    return client.compute("X-OCCI-Attribute: occi.compute.memory=0.25", *lines,
                          mixins=(TINY, *mixins))


def console_until(client: Client, path: str, marker: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = client.get(f"{path}/console").get_data(as_text=True)
        if marker in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{marker!r} not on the console within {timeout} s:\n{text[-2000:]}")


def state(client: Client, path: str) -> str:
    """The guest's state once its job ends (a guest slow to obey its power
    button on a busy host outlasts `job_wait_seconds`)."""
    return client.settled(path, "occi.compute.state", 90)


KEYS: dict[str, str] = {}  # location -> key, remembered for after a delete


def key_of(client: Client, path: str) -> str:
    if path not in KEYS:
        KEYS[path] = client.key(path)
    return KEYS[path]


def domain_of(client: Client, path: str) -> libvirt.virDomain | None:
    try:
        return libvirt.open("qemu:///system").lookupByName("occi-" + key_of(client, path))
    except libvirt.libvirtError:
        return None


def test_boot_with_ssh_key_and_user_data(client: Client) -> None:
    path = boot(client,
                'X-OCCI-Attribute: occi.compute.hostname="tiny-guest"',
                f'X-OCCI-Attribute: occi.credentials.ssh.publickey="{SSH_KEY}"',
                'X-OCCI-Attribute: occi.compute.userdata="'
                + base64.b64encode(USER_DATA).decode() + '"',
                mixins=("http://schemas.ogf.org/occi/infrastructure/credentials#ssh_key",
                        "http://schemas.ogf.org/occi/infrastructure/compute#user_data"))
    console = console_until(client, path, "occi-tiny: ready")
    assert "occi-tiny: booted" in console
    assert "occi-tiny: hostname tiny-guest" in console
    assert f'occi-tiny: meta-data:   - "{SSH_KEY}"' in console
    assert "occi-tiny: user-data:   - echo hello from user data" in console
    attributes = client.attributes(path)
    assert attributes["occi.compute.state"] == "active"
    assert attributes["occi.compute.state.message"].startswith("running")
    assert attributes["occi_server.monitoring.cpu_seconds"] > 0
    assert attributes["occi_server.monitoring.memory_kib"] == 256 * 1024


def test_actions_follow_the_real_guest(client: Client) -> None:
    path = boot(client)
    console_until(client, path, "occi-tiny: ready")
    stop = [category(COMPUTE_ACTION + "stop", "action"), 'X-OCCI-Attribute: method="acpioff"']
    assert client.post_text(f"{path}?action=stop", stop).status_code == 200
    assert state(client, path) == "inactive"
    assert "powered off" not in client.attributes(path)["occi.compute.state.message"]
    assert not domain_of(client, path).isActive()
    assert client.post_text(f"{path}?action=start", []).status_code == 200
    assert state(client, path) == "active"
    assert client.post_text(f"{path}?action=suspend", []).status_code == 200
    assert domain_of(client, path).state()[0] == libvirt.VIR_DOMAIN_PAUSED
    assert state(client, path) == "suspended"
    assert client.post_text(f"{path}?action=start", []).status_code == 200
    assert client.post_text(f"{path}?action=restart", [
        category(COMPUTE_ACTION + "restart", "action"),
        'X-OCCI-Attribute: method="cold"']).status_code == 200
    assert state(client, path) == "active"
    assert client.request("DELETE", path).status_code == 200
    assert domain_of(client, path) is None
    assert not (Path(client.app.extensions["occi.config"].instances_path) /
                key_of(client, path)).exists()


def test_save_makes_a_bootable_os_template(client: Client) -> None:
    path = boot(client)
    console_until(client, path, "occi-tiny: ready")
    response = client.post_text(f"{path}?action=save", [
        category(COMPUTE_ACTION + "save", "action"), 'X-OCCI-Attribute: name="tiny copy"'])
    assert response.status_code == 200, response.get_data(as_text=True)
    term = response.get_data(as_text=True).split(";")[0].split()[-1]
    assert state(client, path) == "active"
    assert f"Category: {term};" in client.get("/-/").get_data(as_text=True)
    copy = client.compute("X-OCCI-Attribute: occi.compute.memory=0.25",
                          mixins=(f"{SITE}os_tpl#{term}",))
    assert state(client, copy) == "active"


def test_compute_needs_an_os_template(client: Client) -> None:
    response = client.post_text("/compute/", [category(COMPUTE, "kind")])
    assert response.status_code == 400
    said = response.get_data(as_text=True)
    assert "OS template" in said
    listing = said.split("GET ")[1].split(" lists")[0]  # the advice works as given
    assert 'Category: tiny; scheme="' in client.get(listing).get_data(as_text=True)


def test_hostile_title_reaches_libvirt_as_text(client: Client) -> None:
    hostile = "a'><disk type=\\\"file\\\"><source file=\\\"/etc/shadow\\\"/></disk>"
    path = boot(client, f'X-OCCI-Attribute: occi.core.title="{hostile}"')
    xml = domain_of(client, path).XMLDesc(0)
    assert "/etc/shadow\"/></disk>" not in xml
    assert len(domain_of(client, path).XMLDesc(0).split("<disk ")) == 3  # boot disk, seed


def test_a_failed_boot_leaves_an_error_and_no_orphan(data_dir: Path) -> None:
    # Placement would refuse 512 vCPUs on this host; with the ratio raised, libvirt does.
    app = libvirt_app(data_dir, quotas=OVERSIZE_ALLOWED, cpu_ratio=1024)
    client = Client(app)
    path = boot(client, "X-OCCI-Attribute: occi.compute.cores=512")
    attributes = client.attributes(path)
    assert attributes["occi.compute.state"] == "error"
    assert "libvirt" in attributes["occi.compute.state.message"]
    assert domain_of(client, path) is None
    assert client.request("DELETE", path).status_code == 200
    app.extensions["occi.store"].dispose()


def test_placement_refuses_more_vcpus_than_the_host_takes(client: Client) -> None:
    path = boot(client, "X-OCCI-Attribute: occi.compute.cores=512")
    message = client.attributes(path)["occi.compute.state.message"]
    assert "no hypervisor host has 256 MiB of memory and 512 core(s) left" in message
    assert domain_of(client, path) is None
    assert client.request("DELETE", path).status_code == 200


def test_unreachable_libvirt_is_503_and_stores_nothing(data_dir: Path) -> None:
    app = create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt", data_dir=str(data_dir),
        site_scheme=SITE, accelerator="tcg", reconcile_seconds=0,
        libvirt_uri="qemu+unix:///system?socket=/nonexistent/libvirt-sock"))
    client = Client(app)
    response = client.post_text("/compute/", [category(COMPUTE, "kind"), category(TINY, "mixin")])
    assert response.status_code == 503
    assert "not reachable" in response.get_data(as_text=True)
    assert client.get("/compute/").get_data() == b""
    app.extensions["occi.store"].dispose()


def test_reconciler_notices_what_happens_outside(client: Client) -> None:
    path = boot(client)
    domain_of(client, path).destroy()
    service = client.app.extensions["occi.service"]
    reconciler = Reconciler(service, 1)
    assert reconciler.run_once() == 1
    assert state(client, path) == "inactive"



def test_a_create_its_front_end_left_midway_is_finished_or_failed_by_another(
        client: Client) -> None:
    """A create whose process stopped after defining its guest and before
    starting it: the taker starts the guest and the job ends done. One whose
    guest was never defined ends in `error`, saying why (and keeps saying it),
    its job failed."""
    from tests.conformance.test_takeover import ELSEWHERE, interrupted, job_state

    service = client.app.extensions["occi.service"]
    path = boot(client)
    domain_of(client, path).destroy()  # defined, not running: as left between the two
    job = interrupted(client.app, path, ELSEWHERE)
    Reconciler(service, 1).run_once()
    assert state(client, path) == "active" and domain_of(client, path).isActive()
    assert job_state(client, job) == "done"

    domain = domain_of(client, path)
    domain.destroy()
    domain.undefine()  # never defined
    job = interrupted(client.app, path, ELSEWHERE)
    Reconciler(service, 1).run_once()
    Reconciler(service, 1).run_once()
    shown = client.attributes(path)
    assert shown["occi.compute.state"] == "error"
    assert "front end doing it stopped" in shown["occi.compute.state.message"]
    assert job_state(client, job) == "failed"
    assert client.request("DELETE", path).status_code == 200


def test_an_adopted_guest_goes_back_to_its_tenant_and_owner(data_dir: Path) -> None:
    from tests.support.tenants import client_of, site_users

    app = libvirt_app(data_dir, auth="basic", users=site_users())
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    try:
        adopt_lost_guest(app, alice, bob)
    finally:
        remove_guests(data_dir)
        app.extensions["occi.store"].dispose()


def adopt_lost_guest(app: Flask, alice: Client, bob: Client) -> None:
    from sqlalchemy import delete

    from occi_server.store.tables import entities

    path = boot(alice, 'X-OCCI-Attribute: occi.core.title="kept"')
    guest_id, key = path.rpartition("/")[2], key_of(alice, path)
    service = app.extensions["occi.service"]
    with service.store.transaction(write=True) as repo:  # the record is lost, the guest runs
        repo.connection.execute(delete(entities).where(entities.c.id == guest_id))
    assert alice.get(path).status_code == 404
    reconciler = Reconciler(service, 1, orphans="adopt")
    assert reconciler.audit(startup=True) == [f"adopted occi-{key} as {path}"]
    adopted = alice.attributes(path)
    assert (adopted["occi.core.title"], adopted["occi.compute.state"]) == ("kept", "active")
    assert bob.get(path).status_code == 404
    with service.store.transaction(write=False) as repo:
        stored = repo.get(guest_id)
        assert stored is not None and (stored.tenant, stored.owner) == ("tenant-a", "alice")
    assert alice.request("DELETE", path).status_code == 200
    assert domain_of(alice, path) is None

def test_kvm_probe_decides_and_explains(tiny_image_dir: Path, tmp_path: Path) -> None:
    from occi_server.backends.libvirt.accel import choose
    from occi_server.images.catalogue import ImageCatalogue
    accelerator = choose("auto", ImageCatalogue(tiny_image_dir).find("tiny"), tmp_path / "a.json")
    assert accelerator.domain_type in ("kvm", "qemu") and accelerator.reason
    again = choose("auto", ImageCatalogue(tiny_image_dir).find("tiny"), tmp_path / "a.json")
    assert again.domain_type == accelerator.domain_type and "cached" in again.reason
    assert choose("tcg", None, tmp_path / "b.json").domain_type == "qemu"


def test_lifecycle_events_reach_the_store_at_once(data_dir: Path) -> None:
    app = create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt", data_dir=str(data_dir),
        site_scheme=SITE, accelerator="tcg", reconcile_seconds=3600))
    client = Client(app)
    try:
        path = boot(client)
        time.sleep(1)  # the reconciler arms its event connection
        domain_of(client, path).destroy()  # behind the API's back
        store = app.extensions["occi.store"]
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with store.transaction(write=False) as repo:
                stored = repo.by_location(path)
            if stored is not None and stored.attributes["occi.compute.state"] == "inactive":
                break
            time.sleep(0.2)
        assert stored is not None and stored.attributes["occi.compute.state"] == "inactive"
        client.request("DELETE", path)
    finally:
        app.extensions["occi.reconciler"].stop()
        app.extensions["occi.store"].dispose()


def test_speed_caps_cpu_bandwidth(client: Client) -> None:
    host_mhz = libvirt.open("qemu:///system").getInfo()[3]
    if host_mhz <= 100:
        pytest.skip(f"the host reports {host_mhz} MHz; no cap can be derived")
    path = boot(client, "X-OCCI-Attribute: occi.compute.speed=0.1")
    quota = ET.fromstring(domain_of(client, path).XMLDesc(0)).findtext("cputune/quota")
    assert int(quota) == max(1000, round(100 / host_mhz * 100_000))


def test_a_volume_survives_detach_and_reattach(data_dir: Path) -> None:
    app = create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt", storage_backend="filepool",
        data_dir=str(data_dir), site_scheme=SITE, accelerator="tcg", reconcile_seconds=0))
    client = Client(app)
    try:
        volume = client.storage(0.5)
        path = boot(client, f'Link: <{volume}>; rel="http://schemas.ogf.org/occi/'
                            'infrastructure#storage"')
        [link] = client.json(path)["links"]
        assert link["attributes"]["occi.storagelink.state"] == "active"
        console = console_until(client, path, " marked occi-marker:")
        # The guest names the volume as the storagelink says.
        assert link["attributes"]["occi.storagelink.deviceid"] == "/dev/vdb"
        mark = re.search(r"occi-tiny: disk /dev/vdb marked (occi-marker:\S+)", console).group(1)
        assert client.request("DELETE", f"/link/storagelink/{link['id']}").status_code == 200
        volume_file = volume_name(client.key(volume))
        assert volume_file not in domain_of(client, path).XMLDesc(
            libvirt.VIR_DOMAIN_XML_INACTIVE)
        time.sleep(3)  # the guest notices the disk is gone
        response = client.post_text("/link/storagelink/", [
            category("http://schemas.ogf.org/occi/infrastructure#storagelink", "kind"),
            f'X-OCCI-Attribute: occi.core.source="{path}"',
            f'X-OCCI-Attribute: occi.core.target="{volume}"'])
        assert response.status_code == 201, response.get_data(as_text=True)
        console_until(client, path, f" carries {mark}")  # the guest may name it anew
        assert client.request("DELETE", path).status_code == 200
        assert client.request("DELETE", volume).status_code == 200
    finally:
        app.extensions["occi.store"].dispose()


@pytest.mark.skipif(tgt_unavailable_reason() is not None, reason=tgt_unavailable_reason() or "")
def test_a_volume_cloned_from_an_image_reaches_the_guest_over_iscsi(data_dir: Path) -> None:
    """As a guest on another host would: QEMU opens the volume's iSCSI target
    with the CHAP secret libvirt keeps, and the guest finds the image's bytes."""
    images = data_dir / "images"
    with (images / "seeded.raw").open("wb") as disk:
        disk.write(b"occi-marker:from-image ")
        disk.truncate(1 << 20)
    (images / "seeded.json").write_text(json.dumps({"title": "Seeded", "disk": "seeded.raw",
                                                    "format": "raw"}))
    app = create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt", storage_backend="filepool",
        data_dir=str(data_dir), site_scheme=SITE, accelerator="tcg", reconcile_seconds=0,
        iscsi_exporter="tgt", iscsi_portal=PORTAL, volume_access="iscsi",
        iscsi_iqn_prefix=f"iqn.2026-11.test.occi-{uuid.uuid4().hex[:8]}"))
    client, connection = Client(app), libvirt.open("qemu:///system")
    exporter = app.extensions["occi.service"].backends.storage.exporter
    try:
        volume = client.create(STORAGE, "X-OCCI-Attribute: occi.storage.size=0.25",
                               mixins=(SITE + "image_tpl#seeded",))
        path = boot(client, f'Link: <{volume}>; rel="http://schemas.ogf.org/occi/'
                            'infrastructure#storage"')
        console_until(client, path, "disk /dev/vdb carries occi-marker:from-image")
        [disk] = [d for d in ET.fromstring(domain_of(client, path).XMLDesc(0)).iter("disk")
                  if d.get("type") == "network"]
        source = disk.find("source")
        assert source is not None and source.get("protocol") == "iscsi"
        usage = disk.find("source/auth/secret").get("usage")
        assert connection.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage)
        [link] = client.json(path)["links"]
        assert client.request("DELETE", f"/link/storagelink/{link['id']}").status_code == 200
        with pytest.raises(libvirt.libvirtError):  # the CHAP secret went with the disk
            connection.secretLookupByUsage(libvirt.VIR_SECRET_USAGE_TYPE_ISCSI, usage)
        assert client.request("DELETE", path).status_code == 200
        assert client.request("DELETE", volume).status_code == 200
    finally:
        for name in exporter.exported():
            exporter.unexport(name)
        app.extensions["occi.store"].dispose()


def test_a_long_graceful_stop_holds_no_other_tenant_back(data_dir: Path) -> None:
    """A guest that ignores the power button (no ACPI) makes a graceful stop wait
    its whole timeout; meanwhile another tenant's creates are answered at once:
    the stop runs in its job, outside the store's write transaction."""
    from tests.support.tenants import client_of, site_users

    tiny = json.loads((data_dir / "images" / "tiny.json").read_text())
    (data_dir / "images" / "deaf.json").write_text(json.dumps(
        {**tiny, "title": "The tiny guest without ACPI", "cmdline": tiny["cmdline"] +
         " acpi=off"}))
    app = libvirt_app(data_dir, shutdown_timeout=15, auth="basic", users=site_users())
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    try:
        guest = alice.compute("X-OCCI-Attribute: occi.compute.memory=0.25",
                              mixins=(SITE + "os_tpl#deaf",))
        console_until(alice, guest, "occi-tiny: ready")
        stop = [category(COMPUTE_ACTION + "stop", "action"), 'X-OCCI-Attribute: method="acpioff"']
        pressed = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:
            stopping = pool.submit(alice.post_text, f"{guest}?action=stop", stop)
            time.sleep(2)  # the guest has had its power button pressed, and ignores it
            delays = []
            for _ in range(3):
                started = time.monotonic()
                assert bob.storage(0.5).startswith("/storage/")
                delays.append(time.monotonic() - started)
            assert max(delays) < 1.0, delays
            assert stopping.result().status_code == 200
        assert state(alice, guest) == "inactive"
        assert time.monotonic() - pressed >= 15  # it waited for the guest, then powered off
        assert "did not shut down within 15 s; powered off" in alice.attributes(guest)[
            "occi.compute.state.message"]
    finally:
        remove_guests(data_dir)
        app.extensions["occi.store"].dispose()
