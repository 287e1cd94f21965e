"""GFD.223 §3.4 (POST ?action=) and GFD.224 state machines."""

from __future__ import annotations

import pytest

from tests.conftest import COMPUTE_ACTION, SITE, STORAGELINK, Client, category

STOP = category(COMPUTE_ACTION + "stop", "action")


def state(client: Client, path: str) -> str:
    return client.attributes(path)["occi.compute.state"]


def test_action_answers_200_and_changes_state(client: Client) -> None:
    path = client.compute()
    response = client.post_text(f"{path}?action=stop", [STOP, 'X-OCCI-Attribute: method="acpioff"'])
    assert response.status_code == 200
    assert state(client, path) == "inactive"
    assert client.post_text(f"{path}?action=start", []).status_code == 200
    assert state(client, path) == "active"


def test_json_action_invocation(client: Client) -> None:
    path = client.compute()
    response = client.post_json(f"{path}?action=suspend", {
        "action": COMPUTE_ACTION + "suspend", "attributes": {"method": "hibernate"}})
    assert response.status_code == 200
    assert response.get_json()["attributes"]["occi.compute.state"] == "suspended"


def test_text_occi_action_replies_ok(client: Client) -> None:
    path = client.compute()
    response = client.request("POST", f"{path}?action=stop", headers={
        "Content-Type": "text/occi", "Accept": "text/occi",
        "Category": f'stop; scheme="{COMPUTE_ACTION}"; class=action'})
    assert response.status_code == 200 and response.get_data(as_text=True) == "OK"


@pytest.mark.parametrize(("query", "lines", "status", "message"), [
    ("start", [], 409, "not possible while"),
    ("fly", [], 400, "no action fly"),
    ("stop", [category(COMPUTE_ACTION + "start", "action")], 400, "body names"),
    ("stop", [STOP, 'X-OCCI-Attribute: method="yank"'], 400, "not one of"),
    ("stop", [STOP, 'X-OCCI-Attribute: speed="fast"'], 400, "no parameter"),
    ("", [STOP], 400, "names no action"),
])
def test_bad_actions(client: Client, query: str, lines: list[str], status: int,
                     message: str) -> None:
    path = client.compute()
    response = client.post_text(f"{path}?action={query}", lines)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert state(client, path) == "active"


def test_action_on_a_collection_is_all_or_nothing(client: Client) -> None:
    first, second = client.compute(), client.compute()
    client.post_text(f"{second}?action=stop", [])
    refused = client.post_text("/compute/?action=stop", [STOP])
    assert refused.status_code == 409
    assert state(client, first) == "active"
    client.post_text(f"{second}?action=start", [])
    assert client.post_text("/compute/?action=stop", [STOP]).status_code == 200
    assert {state(client, first), state(client, second)} == {"inactive"}


def test_save_returns_a_new_os_template(client: Client) -> None:
    path = client.compute()
    response = client.post_text(f"{path}?action=save", [
        category(COMPUTE_ACTION + "save", "action"), 'X-OCCI-Attribute: name="golden"'])
    assert response.status_code == 200
    line = response.get_data(as_text=True).strip()
    assert line.startswith("Category: saved-")
    assert f'scheme="{SITE}os_tpl#"' in line and 'title="golden"' in line
    assert 'rel="http://schemas.ogf.org/occi/infrastructure#os_tpl"' in line
    term = line.split(";")[0].split()[-1]
    assert f'Category: {term}; scheme="{SITE}os_tpl#"' in client.get("/-/").get_data(
        as_text=True)
    clone = client.compute(mixins=(f"{SITE}os_tpl#{term}",))
    assert state(client, clone) == "active"


def test_network_and_storage_actions(client: Client) -> None:
    network, storage = client.network(), client.storage()
    assert client.post_text(f"{network}?action=down", []).status_code == 200
    assert client.attributes(network)["occi.network.state"] == "inactive"
    assert client.post_text(f"{storage}?action=offline", []).status_code == 200
    assert client.attributes(storage)["occi.storage.state"] == "offline"
    assert client.post_text(f"{storage}?action=offline", []).status_code == 409


def test_an_attached_volume_is_never_taken_offline_not_even_with_its_collection(
        client: Client) -> None:
    attached, free = client.storage(), client.storage()
    compute = client.compute()
    client.create(STORAGELINK, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                  f'X-OCCI-Attribute: occi.core.target="{attached}"')
    for path in (attached, "/storage/"):
        refused = client.post_text(f"{path}?action=offline", [])
        assert refused.status_code == 409, path
        assert "detach it" in refused.get_data(as_text=True)
    assert {client.attributes(p)["occi.storage.state"] for p in (attached, free)} == {"online"}


def test_a_state_conflict_says_what_is_possible_or_that_nothing_was_done(
        client: Client) -> None:
    network = client.network()
    assert client.post_text(f"{network}?action=down", []).status_code == 200
    one = client.post_text(f"{network}?action=down", []).get_data(as_text=True)
    assert f"down is not possible while {network} is inactive (possible now: up)" in one
    every = client.post_text("/network/?action=down", []).get_data(as_text=True)
    assert f"down is not possible while {network} is inactive; nothing was done" in every


def test_backend_failure_leaves_the_entity_in_error(make_app) -> None:
    client = Client(make_app(simulated_failures=["compute.act.stop"]))
    path = client.compute()
    response = client.post_text(f"{path}?action=stop", [STOP])
    assert response.status_code == 500
    assert "simulated failure" in response.get_data(as_text=True)
    attributes = client.attributes(path)
    assert attributes["occi.compute.state"] == "error"
    assert "simulated failure" in attributes["occi.compute.state.message"]
    assert client.post_text(f"{path}?action=start", []).status_code == 200


def test_failed_create_leaves_an_entity_in_error(make_app) -> None:
    client = Client(make_app(simulated_failures=["compute.create"]))
    attributes = client.attributes(client.compute())
    assert attributes["occi.compute.state"] == "error"


def test_unreachable_infrastructure_is_503_and_stores_nothing(make_app) -> None:
    client = Client(make_app(simulated_failures=["unavailable"]))
    response = client.post_text("/compute/", [category("http://schemas.ogf.org/occi/"
                                                       "infrastructure#compute", "kind")])
    assert response.status_code == 503
    assert "unreachable" in response.get_data(as_text=True)
    assert client.get("/compute/").get_data() == b""


def test_storage_snapshot_is_a_new_storage_resource(client: Client) -> None:
    storage = client.storage(3.0)
    response = client.post_json(f"{storage}?action=snapshot", {
        "action": "http://schemas.ogf.org/occi/infrastructure/storage/action#snapshot",
        "attributes": {"name": "before upgrade"}})
    assert response.status_code == 200, response.get_data(as_text=True)
    copy = response.get_json()
    assert copy["kind"] == "http://schemas.ogf.org/occi/infrastructure#storage"
    assert copy["id"] != storage.rpartition("/")[2]
    assert (copy["title"], copy["attributes"]["occi.storage.size"]) == ("before upgrade", 3.0)
    assert f"/storage/{copy['id']}" in client.get("/storage/").get_data(as_text=True)
    assert client.post_text(f"{storage}?action=backup", []).status_code == 200
    assert "backed up" in client.attributes(storage)["occi.storage.state.message"]
