"""Tenants over real infrastructure: whatever ids clients choose, one tenant's
requests never reach the files, targets, domains or bridges behind another
tenant's resources. Real file pool volumes (qemu-img); then the whole site at
once: a real guest (libvirt), volumes exported by tgtd, a bridge with its
dnsmasq in a network namespace the test makes."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.backends.filepool import volume_name
from tests.conftest import STORAGE, Client, category
from tests.support.tenants import client_of, site_users

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img is not installed (scripts/setup.sh installs it)")
GIB = 1024 ** 3


@pytest.fixture
def site(make_app, tmp_path: Path) -> tuple[Client, Client, Path]:
    pool = tmp_path / "pool"
    app = make_app(storage_backend="filepool", volumes_dir=str(pool), storage_capacity_gib=10,
                   iscsi_exporter="none", auth="basic", users=site_users())
    return client_of(app, "alice"), client_of(app, "bob"), pool


def put_volume(client: Client, volume_id: str, size: float = 1.0) -> str:
    path = f"/storage/{volume_id}"
    response = client.request("PUT", path, headers={"Content-Type": "text/plain"}, data=(
        f"{category(STORAGE, 'kind')}\nX-OCCI-Attribute: occi.storage.size={size}\n"))
    assert response.status_code == 201, response.get_data(as_text=True)
    return path


def the_file(client: Client, pool: Path, path: str) -> Path:
    return pool / volume_name(client.key(path))


def old_name_of(volume_id: str) -> str:
    """What the volume of an id that is not plain used to be named by."""
    return hashlib.sha256(volume_id.encode()).hexdigest()[:40]


def test_an_id_that_was_anothers_volume_name_reaches_only_its_own_volume(site) -> None:
    alice, bob, pool = site
    mine = put_volume(alice, "db.data")
    with the_file(alice, pool, mine).open("r+b") as handle:
        handle.write(b"alice's secret")
    theirs = put_volume(bob, old_name_of("db.data"))
    assert bob.attributes(theirs)["occi.storage.state"] == "online"
    assert the_file(bob, pool, theirs) != the_file(alice, pool, mine)
    snapshot = bob.post_text(f"{theirs}?action=snapshot", [])
    assert snapshot.status_code == 200
    copy = "/storage/" + next(line.split('"')[1] for line in snapshot.get_data(
        as_text=True).splitlines() if line.startswith("X-OCCI-Attribute: occi.core.id="))
    assert b"alice" not in the_file(bob, pool, copy).read_bytes()[:64]
    assert bob.post_text(theirs, ["X-OCCI-Attribute: occi.storage.size=3"]).status_code == 200
    assert the_file(alice, pool, mine).stat().st_size == GIB
    assert bob.request("DELETE", theirs).status_code == 200
    assert the_file(alice, pool, mine).read_bytes()[:14] == b"alice's secret"
    assert alice.attributes(mine)["occi.storage.state"] == "online"
    assert alice.request("DELETE", mine).status_code == 200


def test_whoever_comes_first_neither_volume_is_in_error(site) -> None:
    alice, bob, pool = site
    theirs = put_volume(bob, old_name_of("db.data"))
    mine = put_volume(alice, "db.data")
    assert alice.attributes(mine)["occi.storage.state"] == "online"
    assert bob.attributes(theirs)["occi.storage.state"] == "online"
    assert len(list(pool.glob("vol-*.img"))) == 2


# ---------------------------------------------------------------- the whole site


@pytest.fixture
def real_site(tmp_path: Path) -> Iterator[tuple]:
    """alice and bob on a site with libvirt, a tgt-exported file pool and bridges."""
    from occi_server.config import load_config
    from occi_server.http import create_app
    from tests.integration.test_libvirt import remove_guests
    from tests.integration.test_networks import Namespaces, _unavailable_reason, run
    from tests.support.iscsi import PORTAL, tgt_unavailable_reason
    from tests.support.libvirt import link_images, reachable_dir, unavailable_reason

    for reason in (unavailable_reason(), tgt_unavailable_reason(), _unavailable_reason()):
        if reason is not None:
            pytest.skip(reason)
    data_dir = reachable_dir("occi-isolation-")
    link_images(data_dir)
    spaces = Namespaces(f"occi-iso-{uuid.uuid4().hex[:6]}", "")
    run("ip", "netns", "add", spaces.host)
    app = create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt", storage_backend="filepool",
        network_backend="bridge", data_dir=str(data_dir), site_scheme=SITE, accelerator="tcg",
        reconcile_seconds=0, iscsi_exporter="tgt", iscsi_portal=PORTAL,
        iscsi_iqn_prefix=f"iqn.2026-12.test.isolation-{uuid.uuid4().hex[:8]}",
        network_namespace=spaces.host, auth="basic", users=site_users()))
    try:
        yield app, spaces, data_dir
    finally:
        remove_guests(data_dir)
        exporter = app.extensions["occi.service"].backends.storage.exporter
        for name in exporter.exported():
            exporter.unexport(name)
        app.extensions["occi.store"].dispose()
        for pid in run("ip", "netns", "pids", spaces.host, check=False).stdout.split():
            os.kill(int(pid), signal.SIGKILL)
        run("ip", "netns", "del", spaces.host, check=False)
        shutil.rmtree(data_dir, ignore_errors=True)


SITE = "http://occi.test/occi/"


def infrastructure(app, spaces, client: Client, world: dict[str, str]) -> dict[str, object]:
    """What is real behind a tenant's resources: the guest, the volume's bytes and
    target, the bridge and its DHCP hosts."""
    import libvirt

    from tests.integration.test_networks import run

    keys = {kind: client.key(path) for kind, path in world.items()}
    domain = libvirt.open("qemu:///system").lookupByName("occi-" + keys["compute"])
    pool = Path(app.extensions["occi.config"].volumes_path)
    volume = pool / volume_name(keys["storage"])
    exporter = app.extensions["occi.service"].backends.storage.exporter
    bridge = run("ip", "-n", spaces.host, "-o", "link", "show", "ob" + keys["network"]).stdout
    hosts = Path(app.extensions["occi.config"].networks_path) / f"ob{keys['network']}" / "hosts"
    return {"guest": (domain.isActive(), domain.XMLDesc(0).count("<disk ")),
            "volume": (volume.stat().st_size, hashlib.sha256(volume.read_bytes()[:1 << 20])
                       .hexdigest()),
            "target": volume.stem in exporter.exported(),
            "bridge": "UP" in bridge.split(">")[0],
            "dhcp": hosts.read_text() if hosts.exists() else None}


def test_no_request_of_one_tenant_reaches_anothers_infrastructure(real_site) -> None:
    from tests.conformance.test_tenants import bodies
    from tests.conftest import IPNETWORK, NETWORK, NETWORKINTERFACE, STORAGELINK
    from tests.integration.test_libvirt import TINY, console_until

    app, spaces, _ = real_site
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    network = bob.create(NETWORK, 'X-OCCI-Attribute: occi.network.address="10.71.0.0/24"',
                         'X-OCCI-Attribute: occi.network.gateway="10.71.0.1"',
                         mixins=(IPNETWORK,))
    compute = bob.compute("X-OCCI-Attribute: occi.compute.memory=0.25", mixins=(TINY,))
    console_until(bob, compute, "occi-tiny: ready")
    storage = bob.storage(0.25)
    world = {"compute": compute, "storage": storage, "network": network,
             "storagelink": bob.create(STORAGELINK,
                                       f'X-OCCI-Attribute: occi.core.source="{compute}"',
                                       f'X-OCCI-Attribute: occi.core.target="{storage}"')}
    console_until(bob, compute, " marked occi-marker:")  # bob's guest has written to it
    # Bob's DHCP host entry: an interface on his network (a simulated plug would do;
    # libvirt here cannot reach a bridge inside the test's namespace, so it fails
    # after the lease is written and removes it again).
    world["networkinterface"] = bob.create(
        NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{network}"')
    before = infrastructure(app, spaces, bob, world)
    assert before["guest"][0] and before["target"] and before["bridge"]
    tried = 0
    for kind, path in world.items():
        for method, query, body in bodies(kind, path):
            response = alice.request(method, path + query, data=body, headers={
                "Content-Type": "text/plain", "Accept": "text/plain"})
            assert response.status_code == 404, (method, path, query)
            tried += 1
    # Alice's own resources, with the ids that name bob's objects, and her deletes
    # of whole collections.
    for kind in ("storage", "network"):
        mine = f"/{kind}/{bob.key(world[kind])}"
        body = {"storage": category(STORAGE, "kind") + "\nX-OCCI-Attribute: "
                "occi.storage.size=0.25\n", "network": category(NETWORK, "kind") + "\n"}[kind]
        assert alice.request("PUT", mine, data=body,
                             headers={"Content-Type": "text/plain"}).status_code == 201
        assert alice.key(mine) != bob.key(world[kind])
    assert alice.post_text("/compute/?action=stop", [category(
        "http://schemas.ogf.org/occi/infrastructure/compute/action#stop", "action")]
                           ).status_code == 200
    for collection in ("/link/", "/compute/", "/storage/", "/network/"):
        assert alice.request("DELETE", collection).status_code == 200
    assert tried >= 30
    assert infrastructure(app, spaces, bob, world) == before
    assert {path: bob.get(path).status_code for path in world.values()} == dict.fromkeys(
        world.values(), 200)
