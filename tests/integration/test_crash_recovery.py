"""kill -9 of the whole service in the middle of a create, an action and a
delete (at each of occi_server.faults.POINTS), then a restart: no orphan is
left on the infrastructure and no stored record is lost. Real libvirt guests
and a real file pool."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from occi_server.faults import POINTS
from tests.integration.test_libvirt import remove_guests
from tests.integration.test_serve import Server
from tests.support.libvirt import link_images, reachable_dir, unavailable_reason

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
pytestmark = pytest.mark.skipif(unavailable_reason() is not None,
                                reason=unavailable_reason() or "")
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
SETTINGS = {"compute_backend": "libvirt", "storage_backend": "filepool",
            "iscsi_exporter": "none", "accelerator": "tcg", "orphans": "clean",
            "orphan_grace_seconds": "0", "reconcile_seconds": "1", "shutdown_timeout": "5"}


@pytest.fixture
def data_dir() -> Iterator[Path]:
    directory = reachable_dir("occi-crash-")
    link_images(directory)
    yield directory
    remove_guests(directory)
    shutil.rmtree(directory, ignore_errors=True)


def post(server: Server, path: str, body: str) -> requests.Response:
    return requests.post(server.url + path, data=body, timeout=120,
                         headers={"Content-Type": "text/plain",
                                  "Accept": "application/occi+json"})


def create_guest(server: Server, image: str = "tiny", memory: float = 0.25) -> requests.Response:
    return post(server, "/compute/", f'Category: compute; scheme="{INFRA}"; class="kind"\n'
                                     f'Category: {image}; scheme="{SITE}os_tpl#"; class="mixin"\n'
                                     f"X-OCCI-Attribute: occi.compute.memory={memory}\n")


def create_volume(server: Server) -> requests.Response:
    return post(server, "/storage/", f'Category: storage; scheme="{INFRA}"; class="kind"\n'
                                     "X-OCCI-Attribute: occi.storage.size=0.01\n")


SITE = "http://crash.test/occi/"


def domains(data_dir: Path) -> set[str]:
    connection = libvirt.open("qemu:///system")
    return {d.name().removeprefix("occi-") for d in connection.listAllDomains(0)
            if (data_dir / "instances" / d.name().removeprefix("occi-")).exists()}


def volumes(data_dir: Path) -> set[str]:
    return {p.name.removeprefix("vol-").removesuffix(".img")
            for p in (data_dir / "volumes").glob("vol-*.img")}


def keys(data_dir: Path) -> dict[str, str]:
    """Entity id -> the server's key, which names its domain or volume."""
    with sqlite3.connect(data_dir / "occi.sqlite3") as database:
        return dict(database.execute("SELECT id, key FROM entities").fetchall())


def stored(server: Server, collection: str) -> set[str]:
    listing = requests.get(server.url + collection, timeout=30,
                           headers={"Accept": "text/uri-list"}).text
    return {line.rsplit("/", 1)[1] for line in listing.split() if line}


@pytest.fixture
def server(data_dir: Path) -> Iterator[Server]:
    running = Server(data_dir)
    yield running
    running.kill()  # whatever happened, nothing of it keeps running


def crash_during(server: Server, point: str, request) -> None:
    server.start(workers=1, crash_at=point, site_scheme=SITE, **SETTINGS)
    try:
        with pytest.raises(requests.ConnectionError):  # the service died mid-request
            request()
    finally:
        server.kill()


def restart(server: Server) -> None:
    server.start(workers=1, site_scheme=SITE, **SETTINGS)


def settle(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the service did not settle"
        time.sleep(0.2)


def test_every_crash_point_is_known() -> None:
    assert set(POINTS) == {"create.provisioned", "write.committed", "action.performed",
                           "delete.destroyed"}


def attributes(server: Server, location: str) -> dict:
    return requests.get(server.url + location, timeout=30,
                        headers={"Accept": "application/occi+json"}).json()["attributes"]


@pytest.mark.parametrize(("create", "collection", "ready"), [
    (create_guest, "/compute/", ("occi.compute.state", "active")),
    (create_volume, "/storage/", ("occi.storage.state", "online")),
])
def test_a_create_killed_before_its_job_stored_the_outcome(
        data_dir: Path, server: Server, create, collection: str, ready: tuple) -> None:
    crash_during(server, "create.provisioned", lambda: create(server))
    made = domains(data_dir) | volumes(data_dir)
    assert made  # the job had done the infrastructure's part
    restart(server)
    [entity] = stored(server, collection)  # kept, and its real state read back
    assert {keys(data_dir)[entity]} == made
    state, value = ready
    assert attributes(server, f"{collection}{entity}")[state] == value
    assert requests.delete(f"{server.url}{collection}{entity}", timeout=60).status_code == 200
    assert domains(data_dir) | volumes(data_dir) == set()


@pytest.mark.parametrize(("create", "collection", "state"), [
    (create_guest, "/compute/", "occi.compute.state"),
    (create_volume, "/storage/", "occi.storage.state"),
])
def test_a_create_killed_before_its_job_ran(data_dir: Path, server: Server, create,
                                            collection: str, state: str) -> None:
    crash_during(server, "write.committed", lambda: create(server))
    assert domains(data_dir) | volumes(data_dir) == set()  # only the record was made
    restart(server)
    [entity] = stored(server, collection)
    shown = attributes(server, f"{collection}{entity}")
    assert shown[state] == "error" and shown[f"{state}.message"]
    assert requests.delete(f"{server.url}{collection}{entity}", timeout=60).status_code == 200
    assert stored(server, collection) == set()


def test_an_action_killed_before_its_commit_is_read_back(data_dir: Path,
                                                        server: Server) -> None:
    restart(server)
    guest = create_guest(server).headers["Location"].removeprefix(server.url)
    server.stop()
    crash_during(server, "action.performed", lambda: post(
        server, f"{guest}?action=stop",
        f'Category: stop; scheme="{INFRA.replace("#", "/compute/action#")}"; class="action"\n'
        'X-OCCI-Attribute: method="poweroff"\n'))
    restart(server)
    try:
        settle(lambda: requests.get(server.url + guest, timeout=30, headers={
            "Accept": "application/occi+json"}).json()["attributes"][
            "occi.compute.state"] == "inactive")
    finally:
        server.stop()


def test_a_delete_killed_before_its_commit_keeps_the_record(data_dir: Path,
                                                           server: Server) -> None:
    restart(server)
    volume = create_volume(server).headers["Location"].removeprefix(server.url)
    others = {create_volume(server).headers["Location"].rsplit("/", 1)[1] for _ in range(2)}
    server.stop()
    crash_during(server, "delete.destroyed",
                 lambda: requests.delete(server.url + volume, timeout=60))
    restart(server)
    try:
        assert stored(server, "/storage/") == others | {volume.rsplit("/", 1)[1]}
        settle(lambda: requests.get(server.url + volume, timeout=30, headers={
            "Accept": "application/occi+json"}).json()["attributes"][
            "occi.storage.state"] == "error")
        assert requests.delete(server.url + volume, timeout=60).status_code == 200
        assert stored(server, "/storage/") == others
        assert {keys(data_dir)[volume_id] for volume_id in others} == volumes(data_dir)
    finally:
        server.stop()
