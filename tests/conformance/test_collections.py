"""GFD.223 §3.5, §3.8, §3.9: collections, filtering and paging."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from occi_server.http import views
from occi_server.rendering.json import validator
from occi_server.store.records import entities as entity_records
from tests.conftest import COMPUTE, CRTP, NETWORK, Client, category
from tests.support.tenants import client_of, site_users


@pytest.fixture
def three(client: Client) -> list[str]:
    return [client.compute(f'X-OCCI-Attribute: occi.core.title="vm{i}"',
                           mixins=(CRTP + ("large" if i == 2 else "small"),)) for i in range(3)]


def test_listing_in_text_renderings(client: Client, three: list[str]) -> None:
    plain = client.get("/compute/").get_data(as_text=True)
    # No newline after the last line (IM reads a created id from the body's end).
    assert plain == "\n".join(f"X-OCCI-Location: http://localhost{p}" for p in three)
    uris = client.get("/compute/", accept="text/uri-list").get_data(as_text=True)
    assert uris.split() == [f"http://localhost{p}" for p in three]
    occi = client.get("/compute/", accept="text/occi")
    assert occi.get_data(as_text=True) == "OK"
    assert occi.headers["X-OCCI-Location"].split(", ") == [f"http://localhost{p}" for p in three]


def test_json_listing_carries_full_renderings(client: Client, three: list[str]) -> None:
    document = client.json("/compute/")
    assert not list(validator("collection.json").iter_errors(document))
    assert [r["attributes"]["occi.core.title"] for r in document["resources"]] == \
        ["vm0", "vm1", "vm2"]
    assert all("actions" in r for r in document["resources"])
    assert set(document) == {"resources"}


def test_empty_collection_is_200(client: Client) -> None:
    response = client.get("/storage/")
    assert response.status_code == 200 and response.get_data() == b""
    # Only the key of the members' type (GFD.226).
    assert client.json("/storage/") == {"resources": []}
    assert client.json("/link/storagelink/") == {"links": []}


def test_core_resource_collection_holds_every_resource(client: Client, three: list[str]) -> None:
    network = client.network()
    listed = client.get("/resource/", accept="text/uri-list").get_data(as_text=True)
    assert all(p in listed for p in [*three, network])


def test_filter_by_attribute(client: Client, three: list[str]) -> None:
    response = client.get("/compute/", headers={"X-OCCI-Attribute": 'occi.core.title="vm1"'})
    assert response.get_data(as_text=True).split() == ["X-OCCI-Location:",
                                                       f"http://localhost{three[1]}"]
    numeric = client.get("/compute/", headers={"X-OCCI-Attribute": "occi.compute.cores=4"})
    assert numeric.get_data(as_text=True).count("X-OCCI-Location") == 1


def test_filter_by_mixin_category(client: Client, three: list[str]) -> None:
    response = client.get("/compute/", headers={
        "Content-Type": "text/occi",
        "Category": f'small; scheme="{CRTP}"; class="mixin"'})
    assert response.get_data(as_text=True).count("X-OCCI-Location") == 2


def test_category_filters_select_before_a_page_is_cut(client: Client, three: list[str]) -> None:
    network = client.network()
    small = {"Content-Type": "text/occi", "Category": f'small; scheme="{CRTP}"; class="mixin"'}
    first = client.get("/compute/?page=1&number=1", accept="text/uri-list", headers=small)
    assert first.get_data(as_text=True).split() == [f"http://localhost{three[0]}"]
    assert first.headers["X-OCCI-Next-Page"].endswith("page=2&number=1")
    second = client.get("/compute/?page=2&number=1", accept="text/uri-list", headers=small)
    assert second.get_data(as_text=True).split() == [f"http://localhost{three[1]}"]
    assert "X-OCCI-Next-Page" not in second.headers
    with_title = client.get("/compute/", accept="text/uri-list", headers={
        **small, "X-OCCI-Attribute": 'occi.core.title="vm1"'})
    assert with_title.get_data(as_text=True).split() == [f"http://localhost{three[1]}"]
    computes = {"Content-Type": "text/occi",
                "Category": category(COMPUTE, "kind").removeprefix("Category: ")}
    everything = client.get("/?page=1&number=5", accept="text/uri-list", headers=computes)
    assert everything.get_data(as_text=True).split() == [f"http://localhost{p}" for p in three]
    network_kind = {"Content-Type": "text/occi",
                    "Category": category(NETWORK, "kind").removeprefix("Category: ")}
    networks = client.get("/", accept="text/uri-list", headers=network_kind)
    assert networks.get_data(as_text=True).split() == [f"http://localhost{network}"]
    assert client.get("/compute/", accept="text/uri-list", headers=network_kind).get_data() == b""


def test_mixin_collection_lists_members_of_its_family(client: Client, three: list[str]) -> None:
    assert client.get("/mixin/resource_tpl/large/").get_data(as_text=True).count("Location") == 1
    assert client.get("/mixin/resource_tpl/").get_data(as_text=True).count("Location") == 3


def test_paging(client: Client, three: list[str]) -> None:
    page2 = client.get("/compute/?page=2&number=2").get_data(as_text=True)
    assert page2.split() == ["X-OCCI-Location:", f"http://localhost{three[2]}"]
    assert client.get("/compute/?page=9&number=2").get_data() == b""
    assert client.get("/compute/?number=100000").status_code == 413
    assert client.get("/compute/?page=0").status_code == 400


def test_a_collection_comes_in_pages_of_a_default_size(make_app) -> None:
    client = Client(make_app(default_page_size=2))
    made = [client.compute() for _ in range(3)]
    first = client.get("/compute/", accept="text/uri-list")
    assert first.get_data(as_text=True).split() == [f"http://localhost{p}" for p in made[:2]]
    following = first.headers["X-OCCI-Next-Page"]
    assert following == "http://localhost/compute/?page=2&number=2"
    rest = client.get(following.removeprefix("http://localhost"), accept="text/uri-list")
    assert rest.get_data(as_text=True).split() == [f"http://localhost{made[2]}"]
    assert "X-OCCI-Next-Page" not in rest.headers
    assert "X-OCCI-Next-Page" not in client.get("/compute/?number=3").headers


def test_one_request_creates_a_bounded_number_of_entities(make_app) -> None:
    client = Client(make_app(max_entities_per_request=3))
    response = client.post_json("/compute/", {"resources": [
        {"kind": COMPUTE, "title": str(n)} for n in range(4)]})
    assert response.status_code == 413
    assert "at most 3" in response.get_data(as_text=True)
    assert client.get("/compute/").get_data() == b""


def test_delete_collection_deletes_members(client: Client, three: list[str]) -> None:
    assert client.request("DELETE", "/compute/").status_code == 200
    assert client.get("/compute/").get_data() == b""
    assert all(client.get(p).status_code == 404 for p in three)


def test_delete_listed_subset_of_a_collection(client: Client, three: list[str]) -> None:
    response = client.post_text("/compute/", [f"X-OCCI-Location: {three[0]}"], method="DELETE")
    assert response.status_code == 200
    assert client.get(three[0]).status_code == 404
    assert client.get(three[1]).status_code == 200


def test_create_in_the_wrong_collection_is_400(client: Client) -> None:
    response = client.post_text("/compute/", [category(NETWORK, "kind")])
    assert response.status_code == 400
    assert "/network/" in response.get_data(as_text=True)


def test_json_create_of_several_entities(client: Client) -> None:
    response = client.post_json("/compute/", {"resources": [
        {"kind": COMPUTE, "title": "a"}, {"kind": COMPUTE, "title": "b"}]})
    assert response.status_code == 201
    assert [r["title"] for r in response.get_json()["resources"]] == ["a", "b"]


def test_mixin_membership_replace_and_dissociate(client: Client, three: list[str]) -> None:
    client.post_text("/-/", ['Category: tag; scheme="http://example.com/t#"; class="mixin"; '
                             'location="/tag/"'])
    assert client.post_json("/tag/", three[:2]).status_code == 200
    replaced = client.post_text("/tag/", [f"X-OCCI-Location: {three[2]}"], method="PUT")
    assert replaced.status_code == 200
    assert replaced.get_data(as_text=True).split() == ["X-OCCI-Location:",
                                                       f"http://localhost{three[2]}"]
    emptied = client.request("DELETE", "/tag/")
    assert emptied.status_code == 200 and emptied.get_data() == b""
    assert all(client.get(p).status_code == 200 for p in three)  # entities stay


def test_association_respects_applies(client: Client) -> None:
    network = client.network()
    response = client.post_text("/mixin/resource_tpl/small/", [f"X-OCCI-Location: {network}"])
    assert response.status_code == 400
    assert "does not apply" in response.get_data(as_text=True)


def test_unbound_root_lists_everything(client: Client, three: list[str]) -> None:
    assert client.get("/", accept="text/uri-list").get_data(as_text=True).count("http") == 3
    network = client.network()
    client.create("http://schemas.ogf.org/occi/infrastructure#networkinterface",
                  f'X-OCCI-Attribute: occi.core.source="{three[0]}"',
                  f'X-OCCI-Attribute: occi.core.target="{network}"')
    mixed = client.json("/")  # resources and links at once: both keys
    assert (len(mixed["resources"]), len(mixed["links"])) == (4, 1)


def test_text_occi_delete_of_listed_members_only(client: Client, three: list[str]) -> None:
    response = client.request("DELETE", "/compute/", headers={
        "Content-Type": "text/occi", "X-OCCI-Location": f"http://localhost{three[1]}"})
    assert response.status_code == 200
    assert [client.get(p).status_code for p in three] == [200, 404, 200]


@pytest.fixture
def whole(make_app, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """A site that sends whole collections (no default page), 2 members (or
    locations) a chunk."""
    monkeypatch.setattr(views, "CHUNK", 2)
    monkeypatch.setattr(views, "LOCATIONS_CHUNK", 2)
    return make_app(auth="basic", users=site_users(), default_page_size=0)


def test_a_whole_collection_is_sent_in_chunks_with_every_member_once(
        whole: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    alice, bob = client_of(whole, "alice"), client_of(whole, "bob")
    # Several made in the same instant: the order is (created, id), none lost at a chunk's edge.
    instant = datetime(2026, 1, 1, tzinfo=UTC)
    monkeypatch.setattr(entity_records, "_now", lambda: instant)
    made = sorted((alice.compute(f'X-OCCI-Attribute: occi.core.title="vm{i}"')
                   for i in range(5)), key=lambda path: path.rpartition("/")[2])
    monkeypatch.undo()
    made.append(alice.compute('X-OCCI-Attribute: occi.core.title="later"'))
    bob.compute()  # another tenant's
    urls = [f"http://localhost{path}" for path in made]

    # Sent in pieces as they are read: no length is known before the last.
    plain = alice.get("/compute/")
    assert "Content-Length" not in plain.headers
    assert plain.get_data(as_text=True) == "\n".join(f"X-OCCI-Location: {u}" for u in urls)
    uris = alice.get("/compute/", accept="text/uri-list")
    assert "Content-Length" not in uris.headers
    assert uris.get_data(as_text=True) == "".join(f"{u}\r\n" for u in urls)
    document = alice.json("/compute/")
    assert not list(validator("collection.json").iter_errors(document))
    assert [r["id"] for r in document["resources"]] == [p.rpartition("/")[2] for p in made]
    assert document["resources"][-1]["title"] == "later"
    assert all("actions" in r for r in document["resources"])
    headers = alice.get("/compute/", accept="text/occi").headers["X-OCCI-Location"]
    assert headers.split(", ") == urls  # header renderings are not sent in pieces
    assert alice.json("/link/networkinterface/") == {"links": []}
    assert alice.get("/storage/").get_data() == b""
    paged = [alice.get(f"/compute/?page={n}&number=4", accept="text/uri-list")
             .get_data(as_text=True).split() for n in (1, 2)]
    assert paged == [urls[:4], urls[4:]]
    assert len(bob.get("/compute/", accept="text/uri-list").get_data(as_text=True).split()) == 1


def test_a_filtered_collection_is_not_paged_by_the_database(whole: Flask) -> None:
    alice = client_of(whole, "alice")
    made = [alice.compute(f'X-OCCI-Attribute: occi.core.title="vm{i % 2}"') for i in range(5)]
    odd = alice.get("/compute/?page=1&number=2", accept="text/uri-list",
                    headers={"X-OCCI-Attribute": 'occi.core.title="vm1"'})
    assert odd.get_data(as_text=True).split() == [f"http://localhost{made[1]}",
                                                  f"http://localhost{made[3]}"]
    assert "X-OCCI-Next-Page" not in odd.headers
