"""SixSq's CIMI client (slipstream-api's `Api`, its own code, unchanged)
against a real server whose CIMI interface is where that client looks for it
(`cimi_path = "/api/"`): the entry point, searches with filters, adding,
reading, editing, operating on and deleting a machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from slipstream.api import Api

from tests.integration.test_serve import Server

ACTION = "http://schemas.dmtf.org/cimi/2/action/"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Server]:
    running = Server(Path(tmp_path_factory.mktemp("cimi")) / "data")
    running.start(workers=2, cimi_path="/api/")
    yield running
    running.stop()


@pytest.fixture
def api(site: Server, tmp_path: Path) -> Api:
    return Api(endpoint=site.url, cookie_file=str(tmp_path / "cookies.txt"))


def test_sixsqs_client_drives_a_machine_through_its_life(api: Api) -> None:
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
