"""Storage in a file pool: real qcow2 volumes behind the OCCI storage kind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from occi_server.backends.filepool import FilePoolStorage, volume_name
from occi_server.backends.rawview import RawViews
from occi_server.core import Entity
from occi_server.errors import BackendFailure
from occi_server.images import Image
from tests.conftest import STORAGE, Client, category

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None,
                                reason="qemu-img is not installed (scripts/setup.sh installs it)")
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
GIB = 1024 ** 3


@pytest.fixture
def client(make_app, tmp_path: Path) -> Client:
    return Client(make_app(storage_backend="filepool", volumes_dir=str(tmp_path / "pool"),
                           storage_capacity_gib=10, iscsi_exporter="none"))


def volume_file(client: Client, path: str) -> Path:
    pool = Path(client.app.extensions["occi.config"].volumes_path)
    return pool / volume_name(client.key(path))


def qemu_size(path: Path) -> int:
    return json.loads(subprocess.run(["qemu-img", "info", "-U", "--output=json", str(path)],
                                     capture_output=True, check=True).stdout)["virtual-size"]


def test_a_volume_is_a_sparse_raw_file_that_grows(client: Client) -> None:
    path = client.storage(2.0)
    file = volume_file(client, path)
    assert qemu_size(file) == 2 * GIB
    assert file.stat().st_blocks * 512 < 1024 * 1024  # thin: nothing allocated yet
    assert client.attributes(path)["occi.storage.state"] == "online"
    assert "filepool" in client.get("/-/").get_data(as_text=True)
    assert client.post_text(path, ["X-OCCI-Attribute: occi.storage.size=3.5"]).status_code == 200
    assert qemu_size(file) == int(3.5 * GIB)
    shrink = client.post_text(path, ["X-OCCI-Attribute: occi.storage.size=1.0"])
    assert shrink.status_code == 409 and "only grow" in shrink.get_data(as_text=True)
    assert client.attributes(path)["occi.storage.size"] == 3.5


def test_a_full_pool_is_507_and_stores_nothing(client: Client) -> None:
    client.storage(6.0)
    response = client.post_text("/storage/", [category(STORAGE, "kind"),
                                              "X-OCCI-Attribute: occi.storage.size=5.0"])
    assert response.status == "507 Insufficient Storage"
    assert "6 of 10 GiB" in response.get_data(as_text=True)
    assert client.get("/storage/").get_data(as_text=True).count("Location") == 1


def test_offline_and_attachment_rules(client: Client) -> None:
    path = client.storage(1.0)
    assert client.post_text(f"{path}?action=offline", []).status_code == 200
    refused = client.post_text("/compute/", [
        category(INFRA + "compute", "kind"), f'Link: <{path}>; rel="{INFRA}storage"'])
    assert refused.status_code == 409 and "offline" in refused.get_data(as_text=True)
    assert client.post_text(f"{path}?action=online", []).status_code == 200
    client.compute(f'Link: <{path}>; rel="{INFRA}storage"')
    busy = client.post_text(f"{path}?action=offline", [])
    assert busy.status_code == 409 and "detach it" in busy.get_data(as_text=True)


def test_deleted_volumes_wait_in_quarantine(client: Client) -> None:
    path = client.storage(1.0)
    file, key = volume_file(client, path), client.key(path)
    assert client.request("DELETE", path).status_code == 200
    assert not file.exists()
    backend = client.app.extensions["occi.service"].backends.storage
    [(stem, deleted)] = backend.aside()
    assert stem == file.stem and (backend.quarantine / f"{stem}.{deleted}.img").exists()
    assert backend.reap(now=deleted + 60) == []
    assert backend.restore(key) == GIB and file.exists()
    backend.delete(Entity(id=path.rpartition("/")[2], key=key, kind=STORAGE, location=path))
    assert backend.reap(now=deleted + backend.grace_seconds + 1) != []
    assert backend.aside() == []


def test_volume_names_never_come_from_the_client(tmp_path: Path) -> None:
    for key in ("a:b.c", "../x", "", "x" * 101):
        with pytest.raises(BackendFailure, match="not a volume key"):
            volume_name(key)
    pool = FilePoolStorage(tmp_path / "p", tmp_path / "q", capacity_gib=1)
    hostile = Entity(id="--help", key="5eed5eed5eed", kind=STORAGE, location="/storage/--help",
                     attributes={"occi.storage.size": 0.001})
    pool.create(hostile)
    assert [p.name for p in (tmp_path / "p").glob("vol-*")] == ["vol-5eed5eed5eed.img"]


def test_operator_restores_a_deleted_volume(client: Client, tmp_path: Path) -> None:
    path = client.storage(1.0)
    volume_id = client.key(path)  # the quarantine knows volumes by their keys
    assert client.request("DELETE", path).status_code == 200
    config = client.app.extensions["occi.config"]
    server = Path(sys.executable).parent / "occi-server"
    env = {**os.environ, "OCCI_BACKEND": "simulated", "OCCI_STORAGE_BACKEND": "filepool",
           "OCCI_ISCSI_EXPORTER": "none", "OCCI_VOLUMES_DIR": str(config.volumes_path)}
    listed = subprocess.run([str(server), "quarantine", "--data-dir", config.data_dir], env=env,
                            capture_output=True, text=True, check=True)
    assert listed.stdout.startswith(volume_id + "\tdeleted ")
    restored = subprocess.run([str(server), "restore-volume", volume_id, "--data-dir",
                               config.data_dir], env=env, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    assert client.attributes(path)["occi.storage.size"] == 1.0
    again = subprocess.run([str(server), "restore-volume", volume_id, "--data-dir",
                            config.data_dir], env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "exists" in again.stderr



def test_restored_and_adopted_volumes_go_back_to_their_tenant(make_app, tmp_path: Path) -> None:
    from sqlalchemy import delete

    from occi_server.store.tables import entities
    from tests.support.tenants import client_of, site_users

    settings = {"storage_backend": "filepool", "volumes_dir": str(tmp_path / "pool"),
                "iscsi_exporter": "none", "auth": "basic", "users": site_users()}
    app = make_app(**settings)
    alice, bob = client_of(app, "alice"), client_of(app, "bob")
    deleted, lost = alice.storage(0.5), alice.storage(0.25)
    snapshot = alice.post_text(f"{lost}?action=snapshot", [])
    assert snapshot.status_code == 200
    copy = "/storage/" + next(line.split('"')[1] for line in snapshot.get_data(
        as_text=True).splitlines() if line.startswith("X-OCCI-Attribute: occi.core.id="))
    deleted_key = alice.key(deleted)
    assert alice.request("DELETE", deleted).status_code == 200
    with app.extensions["occi.store"].transaction(write=True) as repo:  # records are lost
        repo.connection.execute(delete(entities).where(entities.c.location.in_([lost, copy])))
    config = app.extensions["occi.config"]
    env = {**os.environ, "OCCI_BACKEND": "simulated", "OCCI_STORAGE_BACKEND": "filepool",
           "OCCI_ISCSI_EXPORTER": "none", "OCCI_VOLUMES_DIR": str(config.volumes_path)}
    restored = subprocess.run([str(Path(sys.executable).parent / "occi-server"), "restore-volume",
                               deleted_key, "--data-dir", config.data_dir],
                              env=env, capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    restarted = make_app(**settings, orphans="adopt")
    alice, bob = client_of(restarted, "alice"), client_of(restarted, "bob")
    for path in (deleted, lost, copy):
        assert alice.attributes(path)["occi.storage.state"] == "online"
        assert bob.get(path).status_code == 404
    listed = alice.get("/storage/", accept="text/uri-list").get_data(as_text=True).split()
    assert len(listed) == 3

def test_snapshot_and_backup_copy_the_bytes(client: Client) -> None:
    path = client.storage(1.0)
    file = volume_file(client, path)
    with file.open("r+b") as handle:
        handle.write(b"state before the snapshot")
    response = client.post_text(f"{path}?action=snapshot", [])
    assert response.status_code == 200, response.get_data(as_text=True)
    copy_id = next(line.split('"')[1] for line in response.get_data(as_text=True).splitlines()
                   if line.startswith("X-OCCI-Attribute: occi.core.id="))
    copy = volume_file(client, f"/storage/{copy_id}")
    assert copy.read_bytes()[:25] == b"state before the snapshot" and qemu_size(copy) == GIB
    assert client.post_text(f"{path}?action=backup", []).status_code == 200
    [backup] = (file.parent / "backups").iterdir()
    assert backup.read_bytes()[:25] == b"state before the snapshot"
    assert backup.name in client.attributes(path)["occi.storage.state.message"]
    too_big = client.storage(7.0)
    refused = client.post_text(f"{too_big}?action=snapshot", [])
    assert refused.status == "507 Insufficient Storage"


def mounts_on(path: Path) -> int:
    return sum(line.split(" ")[4] == str(path) for line in Path("/proc/self/mountinfo").open())


@pytest.fixture
def clone_pool(tmp_path: Path) -> Iterator[tuple[FilePoolStorage, Image]]:
    """A pool and a 1 GiB qcow2 image whose first MiB is 0x5a; no view outlives the test."""
    yield make_clone_pool(tmp_path)
    for view in (tmp_path / "pool").glob("vol-*.img"):
        RawViews(tmp_path / "pool/views").close(view)


def make_clone_pool(base: Path) -> tuple[FilePoolStorage, Image]:
    disk = base / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1G"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 1M", str(disk)], check=True,
                   capture_output=True)
    image = Image("golden", "Golden", info={"disk": str(disk), "format": "qcow2",
                                            "virtual_size": GIB})
    return FilePoolStorage(base / "pool", base / "quarantine", grace_seconds=3600), image


def volume(volume_id: str, size: float) -> Entity:
    return Entity(id=volume_id, key=volume_id, kind=STORAGE, location=f"/storage/{volume_id}",
                  attributes={"occi.storage.size": size, "occi.storage.state": "online"})


def head(path: Path, count: int = 8) -> bytes:
    with path.open("rb") as handle:
        return handle.read(count)


def test_a_clone_is_a_raw_view_of_a_qcow2_overlay(
        tmp_path: Path, clone_pool: tuple[FilePoolStorage, Image]) -> None:
    pool, image = clone_pool
    clone = volume("c1", 2.0)
    pool.create(clone, image)
    view, overlay = tmp_path / "pool/vol-c1.img", tmp_path / "pool/vol-c1.qcow2"
    assert head(view) == b"\x5a" * 8 and view.stat().st_size == 2 * GIB
    assert qemu_size(overlay) == 2 * GIB and overlay.stat().st_size < 1024 * 1024
    with view.open("r+b") as handle:  # a guest writes: the overlay takes it, not the image
        handle.write(b"written!")
    assert head(view) == b"written!"
    assert head(Path(image.info["disk"]), 4) == b"QFI\xfb"
    assert subprocess.run(["qemu-io", "-r", "-U", "-c", "read -P 0x5a 0 8", image.info["disk"]],
                          capture_output=True, text=True).stdout.count("read 8/8") == 1
    pool.update(clone, {"occi.storage.size": 3.0})
    assert pool.volumes() == {"vol-c1": 3 * GIB}
    copy = volume("c2", 3.0)
    pool.snapshot(clone, copy)  # a full raw copy, read through the view
    assert head(tmp_path / "pool/vol-c2.img") == b"written!"
    assert not (tmp_path / "pool/vol-c2.qcow2").exists()


def test_clones_survive_quarantine_and_a_restart(
        tmp_path: Path, clone_pool: tuple[FilePoolStorage, Image]) -> None:
    pool, image = clone_pool
    clone = volume("c1", 1.0)
    pool.create(clone, image)
    view = tmp_path / "pool/vol-c1.img"
    with view.open("r+b") as handle:
        handle.write(b"mine!")
    pool.delete(clone)
    assert pool.names() == set() and not view.exists()
    assert [name for name, _ in pool.aside()] == ["vol-c1"]
    assert pool.restore("c1") == GIB
    assert head(view, 5) == b"mine!"
    pid = int((tmp_path / "pool/views/vol-c1.img.pid").read_text())
    os.kill(pid, signal.SIGKILL)  # the daemon dies, leaving its mount behind
    while (stat := Path(f"/proc/{pid}/stat")).exists() and " Z " not in stat.read_text():
        time.sleep(0.05)
    with pytest.raises(OSError):  # "Transport endpoint is not connected"
        head(view, 5)
    restarted = FilePoolStorage(tmp_path / "pool", tmp_path / "quarantine")
    restarted.repair()
    restarted.repair()  # adopts the running daemon: still one view
    assert head(view, 5) == b"mine!"
    assert mounts_on(view) == 1
    restarted.delete(clone)
    assert restarted.reap(now=10 ** 12) == ["vol-c1"]
    assert not any((tmp_path / "quarantine").iterdir())


@pytest.mark.parametrize(("policy", "listed", "left"), [
    ("report", set(), {"vol-stray.img", "vol-odd.name.img"}),
    ("adopt", {"stray"}, {"vol-stray.img", "vol-odd.name.img"}),  # no key gives "odd.name"
    ("clean", set(), set()),
])
def test_volumes_the_store_does_not_know(make_app, tmp_path: Path, policy: str,
                                         listed: set, left: set) -> None:
    pool = tmp_path / "pool"
    pool.mkdir()
    for name in ("vol-stray.img", "vol-odd.name.img"):
        with (pool / name).open("wb") as handle:
            handle.truncate(GIB // 4)
    client = Client(make_app(storage_backend="filepool", volumes_dir=str(pool),
                             iscsi_exporter="none", orphans=policy))
    paths = client.get("/storage/", accept="text/uri-list").get_data(as_text=True).split()
    assert {p.rsplit("/", 1)[1] for p in paths} == listed
    assert {p.name for p in pool.glob("vol-*.img")} == left
    if listed:
        assert client.attributes("/storage/stray")["occi.storage.size"] == 0.25


def test_parallel_creates_never_overfill_the_pool(client: Client) -> None:
    """The capacity check and the allocation run in jobs, outside any database
    lock; ten 2 GiB volumes raced into a 10 GiB pool: five fit."""
    from concurrent.futures import ThreadPoolExecutor

    def create(_: int) -> int:
        return Client(client.app).post_text("/storage/", [
            category(STORAGE, "kind"), "X-OCCI-Attribute: occi.storage.size=2.0"]).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = sorted(pool.map(create, range(10)))
    assert statuses == [201] * 5 + [507] * 5
    assert len(list((Path(client.app.extensions["occi.config"].volumes_path)).glob(
        "vol-*.img"))) == 5


def test_volumes_made_before_server_keys_are_found_after_migrate(make_app,
                                                                 tmp_path: Path) -> None:
    """A store and pool made by the code before keys (files named from ids: plain
    ids as they are, others by digest) upgrade in place: every volume reaches
    its own file."""
    import hashlib

    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import text

    from occi_server.store import Store
    from occi_server.store.repository import MIGRATIONS

    data, pool = tmp_path / "data", tmp_path / "pool"
    data.mkdir()
    pool.mkdir()
    store = Store(f"sqlite:///{data}/occi.sqlite3")
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    digest = hashlib.sha256(b"db.data").hexdigest()[:40]
    with store.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
        for volume_id, name in (("data1", "vol-data1"), ("db.data", f"vol-{digest}")):
            connection.execute(text(
                "INSERT INTO entities (id, kind, location, attributes, created, updated) "
                "VALUES (:id, :kind, :location, :attributes, '2026-11-02 00:00:00', "
                "'2026-11-02 00:00:00')"), {
                    "id": volume_id, "kind": STORAGE, "location": f"/storage/{volume_id}",
                    "attributes": json.dumps({"occi.core.id": volume_id,
                                              "occi.storage.size": 0.25,
                                              "occi.storage.state": "online"})})
            with (pool / f"{name}.img").open("wb") as handle:
                handle.truncate(GIB // 4)
    store.dispose()
    migrated = subprocess.run([str(Path(sys.executable).parent / "occi-server"), "migrate",
                               "--data-dir", str(data)], env={**os.environ, "OCCI_BACKEND":
                                                               "simulated"},
                              capture_output=True, text=True)
    assert migrated.returncode == 0, migrated.stderr
    client = Client(make_app(data_dir=str(data), storage_backend="filepool",
                             volumes_dir=str(pool), iscsi_exporter="none", orphans="clean"))
    assert client.key("/storage/data1") == "data1" and client.key("/storage/db.data") == digest
    assert client.post_text("/storage/db.data",
                            ["X-OCCI-Attribute: occi.storage.size=0.5"]).status_code == 200
    assert (pool / f"vol-{digest}.img").stat().st_size == GIB // 2
    assert (pool / "vol-data1.img").stat().st_size == GIB // 4
    assert client.request("DELETE", "/storage/data1").status_code == 200
    assert sorted(p.name for p in pool.glob("vol-*.img")) == [f"vol-{digest}.img"]


def test_the_site_catalogue_serves_volumes_when_guests_are_simulated(
        make_app, tmp_path: Path) -> None:
    """Images belong to the site, not to the compute backend: a site with real
    volumes and simulated guests offers its imported images and clones them."""
    from occi_server.images.importing import import_image

    _, image = make_clone_pool(tmp_path)
    images = tmp_path / "images"
    images.mkdir()
    import_image(images, Path(image.info["disk"]), "golden", title="Golden")
    client = Client(make_app(storage_backend="filepool", volumes_dir=str(tmp_path / "pool"),
                             images_dir=str(images), iscsi_exporter="none"))
    mixins = {m["scheme"] + m["term"] for m in client.json("/-/")["mixins"]}
    golden = next(m for m in mixins if m.endswith("image_tpl#golden"))
    assert not any(m.endswith("#debian-12") for m in mixins)  # no declared, disk-less images
    clone = client.create(STORAGE, mixins=(golden,))
    assert client.attributes(clone)["occi.storage.size"] == 1.0
    assert head(volume_file(client, clone)) == b"\x5a" * 8
    response = client.request("DELETE", clone)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert client.get(clone).status_code == 404
    assert not list((tmp_path / "pool").glob("vol-*")), "the clone and its view are gone"
