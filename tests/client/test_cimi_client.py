"""SixSq's CIMI client (slipstream-api's `Api`, its own code, unchanged)
against a real server whose CIMI interface is where that client looks for it
(`cimi_path = "/api/"`), with HTTP basic credentials on the client's requests
session (this site has no SixSq session login): the entry point, searches
with filters, adding, reading, editing, operating on and deleting a machine;
another tenant's client sees none of it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from slipstream.api import Api
from slipstream.api.api import SlipStreamError

from tests.integration.test_serve import Server
from tests.support.tenants import PASSWORDS, site_users

ACTION = "http://schemas.dmtf.org/cimi/2/action/"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Server]:
    running = Server(Path(tmp_path_factory.mktemp("cimi")) / "data")
    running.start(workers=2, cimi_path="/api/", auth="basic", users=json.dumps(site_users()))
    yield running
    running.stop()


def client_of(site: Server, directory: Path, user: str) -> Api:
    api = Api(endpoint=site.url, cookie_file=str(directory / f"{user}-cookies.txt"))
    api.session.auth = (user, PASSWORDS[user])
    return api


def test_sixsqs_client_drives_a_machine_through_its_life(site: Server, tmp_path: Path) -> None:
    api, other = client_of(site, tmp_path, "alice"), client_of(site, tmp_path, "bob")
    entry = api.cimi_cloud_entry_point
    assert {"machines", "machineConfigs", "machineImages", "volumes", "jobs"} <= \
        set(entry.entry_points)
    configs = api.cimi_search("machineConfigs", filter="cpu=1 and memory<=1048576")
    assert [c.name for c in configs.resources_list] == ["small"]
    images = api.cimi_search("machineImages", orderby="name")
    image = images.resources_list[0].id

    created = api.cimi_add("machines", {
        "resourceURI": "http://schemas.dmtf.org/cimi/2/MachineCreate", "name": "from sixsq",
        "machineTemplate": {"machineConfig": {"href": configs.resources_list[0].id},
                            "machineImage": {"href": image}}})
    machine = api.cimi_get(created.id)
    assert (machine.name, machine.state, machine.cpu) == ("from sixsq", "STARTED", 1)

    assert other.cimi_search("machines").count == 0
    with pytest.raises(SlipStreamError, match="no Machine"):
        other.cimi_get(machine.id)

    stopped = api.cimi_operation(machine.id, ACTION + "stop")
    assert (stopped.state, stopped.action) == ("SUCCESS", ACTION + "stop")
    assert api.cimi_get(machine.id).state == "STOPPED"
    api.cimi_edit(machine.id, {"name": "renamed"})
    found = api.cimi_search("machines", filter="name='renamed'", select="name")
    assert found.count == 1 and found.resources_list[0].id == machine.id
    assert not hasattr(found.resources_list[0], "state")  # $select kept only the name

    deleted = api.cimi_delete(machine.id)
    assert (deleted.state, deleted.action) == ("SUCCESS", "delete")
    assert api.cimi_search("machines").count == 0
