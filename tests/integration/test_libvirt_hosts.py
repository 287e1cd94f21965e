"""A site with two hypervisor hosts. The real libvirt daemon is the first host;
the second is libvirt's test driver (test:///default, its own guests, in this
process): a real guest boots on the first, and every operation on a guest
placed on the second must reach the second. (Root's qemu:///session is the
system daemon again, and a second privileged daemon would share its state
directories, so no second real daemon runs on one machine.)"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.config import load_config
from occi_server.core import Entity
from occi_server.errors import BackendFailure
from occi_server.http import create_app
from occi_server.kinds.infrastructure import COMPUTE as COMPUTE_KIND
from occi_server.service import Reconciler, hosts
from tests.conftest import COMPUTE_ACTION, SITE, Client, category
from tests.integration.test_libvirt import (
    OVERSIZE_ALLOWED,
    TINY,
    boot,
    console_until,
    key_of,
    remove_guests,
    state,
)
from tests.support.libvirt import link_images, reachable_dir, unavailable_reason

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

HOSTS = ["qemu:///system", "test:///default"]
UNREACHABLE = "qemu+unix:///system?socket=/nonexistent/libvirt-sock"


pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")


def make_client(data_dir: Path, hosts: list[str], **settings: object) -> Client:
    return Client(create_app(load_config(
        environ={}, backend="simulated", compute_backend="libvirt", data_dir=str(data_dir),
        site_scheme=SITE, accelerator="tcg", reconcile_seconds=0, shutdown_timeout=30,
        libvirt_hosts=hosts, quotas=OVERSIZE_ALLOWED, **settings)))


@pytest.fixture
def data_dir() -> Iterator[Path]:
    directory = reachable_dir("occi-hosts-")
    link_images(directory)
    yield directory
    remove_guests(directory, tuple(HOSTS))  # on either host
    shutil.rmtree(directory, ignore_errors=True)


def domain_name(client: Client, path: str) -> str:
    return "occi-" + key_of(client, path)


def host_of(client: Client, path: str) -> str | None:
    name = domain_name(client, path)
    for uri in HOSTS:
        try:
            libvirt.open(uri).lookupByName(name)
            return uri
        except libvirt.libvirtError:
            continue
    return None


def test_guests_are_spread_over_the_hosts_and_driven_where_they_are(data_dir: Path) -> None:
    client = make_client(data_dir, HOSTS)
    first, second = boot(client), boot(client)
    # The fewest guests first: one on each (which first depends on the memory
    # each has left, and the real host's varies with the machine's load).
    placed = {host_of(client, path): path for path in (first, second)}
    assert set(placed) == set(HOSTS), placed
    on_real, on_second = placed["qemu:///system"], placed["test:///default"]
    too_large = client.compute("X-OCCI-Attribute: occi.compute.memory=4096", mixins=(TINY,))
    assert state(client, too_large) == "error"
    [job] = [j for j in client.get("/jobs/").get_json()["jobs"] if j["location"] == too_large]
    assert "no hypervisor host has 4194304 MiB of memory and 1 core(s) left" in str(job)
    assert host_of(client, too_large) is None
    assert client.request("DELETE", too_large).status_code == 200
    console_until(client, on_real, "occi-tiny: ready")
    stopped = client.post_text(f"{on_second}?action=stop", [
        category(COMPUTE_ACTION + "stop", "action"), 'X-OCCI-Attribute: method="poweroff"'])
    assert stopped.status_code == 200, stopped.get_data(as_text=True)
    assert state(client, on_second) == "inactive"
    assert not libvirt.open("test:///default").lookupByName(
        domain_name(client, on_second)).isActive()
    resized = client.post_text(on_second, [
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
        'class="kind"', "X-OCCI-Attribute: occi.compute.cores=2"])
    assert resized.status_code == 200
    assert libvirt.open("test:///default").lookupByName(
        domain_name(client, on_second)).info()[3] == 2
    health = client.get("/health").get_json()
    assert all(uri in health["checks"]["compute"]["detail"] for uri in HOSTS)
    for path in (first, second):
        assert client.request("DELETE", path).status_code == 200
        assert host_of(client, path) is None


def test_a_compute_runs_in_the_availability_zone_it_names(data_dir: Path) -> None:
    """Wherever placement alone would put a guest, the zone it names decides."""
    client = make_client(data_dir, HOSTS, availability_zones={
        "lab": ["qemu:///system"], "simulator": ["test:///default"]})
    zone = f"{SITE}availability_zone#"
    in_simulator = boot(client, mixins=(zone + "simulator",))
    assert host_of(client, in_simulator) == "test:///default"
    assert zone + "simulator" in client.json(in_simulator)["mixins"]
    in_lab = boot(client, mixins=(zone + "lab",))
    assert host_of(client, in_lab) == "qemu:///system"
    # An operator's move keeps a compute in its zone: "lab" has no other host.
    service = client.app.extensions["occi.service"]
    with pytest.raises(BackendFailure, match="no other hypervisor host in zone lab"):
        hosts.move(service.store, service.config, in_lab, None)
    with pytest.raises(BackendFailure, match="no host test:///default takes guests"):
        hosts.move(service.store, service.config, in_lab, "test:///default")
    assert host_of(client, in_lab) == "qemu:///system"
    for path in (in_simulator, in_lab):
        assert client.request("DELETE", path).status_code == 200


def test_an_unreachable_host_is_left_out_and_reported(data_dir: Path) -> None:
    client = make_client(data_dir, ["qemu:///system", UNREACHABLE])
    path = boot(client)
    assert host_of(client, path) == "qemu:///system"
    assert state(client, path) == "active"
    health = client.get("/health")
    assert health.status_code == 503
    assert "/nonexistent/libvirt-sock" in health.get_json()["checks"]["compute"]["detail"]
    # A guest found on no answering host may be on the silent one: not "vanished",
    # but in error until that host answers.
    backend = client.app.extensions["occi.service"].backends.compute
    missing = Entity(id=str(uuid.uuid4()), key="0badc0ffee00", kind=COMPUTE_KIND.type_id,
                     location="/compute/x")
    reported = backend.current_state(missing)
    assert reported["occi.compute.state"] == "error"
    assert "does not answer" in reported["occi.compute.state.message"]
    assert "kept" in reported["occi.compute.state.message"]
    # The reconciler says so and goes on with the guests it can see.
    service = client.app.extensions["occi.service"]
    with service.store.transaction(write=True) as repo:
        repo.insert(Entity(id=missing.id, key=missing.key, kind=COMPUTE_KIND.type_id,
                           location=f"/compute/{missing.id}", attributes={
                               "occi.core.id": missing.id, "occi.compute.state": "active"}))
    libvirt.open("qemu:///system").lookupByName(domain_name(client, path)).destroy()
    assert Reconciler(service, 1).run_once() == 2
    assert state(client, path) == "inactive"
    assert client.attributes(f"/compute/{missing.id}")["occi.compute.state"] == "error"
    assert client.request("DELETE", path).status_code == 200


def test_an_anti_affinity_group_runs_on_different_hosts(data_dir: Path) -> None:
    client = make_client(data_dir, HOSTS)
    group = ("http://schemas.occi-server.org/occi/infrastructure/compute#anti_affinity",)
    named = 'X-OCCI-Attribute: occi.compute.anti_affinity_group="web"'
    first, second = boot(client, named, mixins=group), boot(client, named, mixins=group)
    assert {host_of(client, first), host_of(client, second)} == set(HOSTS)
    # An operator's move keeps them apart too: each host has one already.
    service = client.app.extensions["occi.service"]
    with pytest.raises(BackendFailure, match="anti-affinity group already"):
        hosts.move(service.store, service.config, first, None)
    assert {host_of(client, first), host_of(client, second)} == set(HOSTS)
    third = boot(client, named, mixins=group)
    assert state(client, third) == "error"
    assert "anti-affinity group already" in \
        client.attributes(third)["occi.compute.state.message"]
    assert host_of(client, third) is None
    # Another group, or none, is placed as usual.
    other = boot(client, 'X-OCCI-Attribute: occi.compute.anti_affinity_group="db"',
                 mixins=group)
    assert host_of(client, other) in HOSTS
    missing = client.post_text("/compute/", [
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
        'class="kind"', f'Category: tiny; scheme="{SITE}os_tpl#"; class="mixin"',
        'Category: anti_affinity; scheme="http://schemas.occi-server.org/occi/infrastructure/'
        'compute#"; class="mixin"'])
    assert missing.status_code == 400, missing.get_data(as_text=True)
    for path in (first, second, third, other):
        assert client.request("DELETE", path).status_code == 200
