"""Tenants over real infrastructure: whatever ids clients choose, one tenant's
requests never reach the files, targets, domains or bridges behind another
tenant's resources. Real file pool volumes (qemu-img)."""

from __future__ import annotations

import hashlib
import shutil
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
