"""GFD.223 §3.7 and GFD.224 links: inline and direct creation, rendering, deletion."""

from __future__ import annotations

from tests.conftest import COMPUTE, NETWORKINTERFACE, STORAGE, STORAGELINK, Client, category

INFRA = "http://schemas.ogf.org/occi/infrastructure#"


def test_inline_links_are_created_with_the_resource(client: Client) -> None:
    network, storage = client.network(), client.storage()
    path = client.compute(
        f'Link: <{network}>; rel="{INFRA}network"; category="{NETWORKINTERFACE}"',
        f'Link: <http://localhost{storage}>; rel="{INFRA}storage"')
    document = client.json(path)
    links = {link["kind"]: link for link in document["links"]}
    nic = links[NETWORKINTERFACE]["attributes"]
    assert nic["occi.networkinterface.address"] == "10.9.0.2"
    assert nic["occi.networkinterface.gateway"] == "10.9.0.1"
    assert nic["occi.networkinterface.interface"] == "eth0"
    assert nic["occi.networkinterface.state"] == "active"
    assert links[STORAGELINK]["attributes"]["occi.storagelink.deviceid"] == "/dev/vdb"
    assert links[STORAGELINK]["target"] == {"location": storage, "kind": STORAGE}


def test_link_rendering_in_text(client: Client) -> None:
    network = client.network()
    path = client.compute(f'Link: <{network}>; rel="{INFRA}network"')
    line = next(x for x in client.get(path).get_data(as_text=True).splitlines()
                if x.startswith("Link: </network/"))
    link = client.json(path)["links"][0]
    assert line.startswith(f'Link: <{network}>; rel="{INFRA}network"; '
                           f'self="/link/networkinterface/{link["id"]}"; category="'
                           f'{NETWORKINTERFACE} http://schemas.ogf.org/occi/infrastructure/'
                           'networkinterface#ipnetworkinterface"; occi.core.id=')
    assert f'occi.core.source="{path}"' in line and f'occi.core.target="{network}"' in line


def test_direct_link_creation_and_get(client: Client) -> None:
    compute, storage = client.compute(), client.storage()
    response = client.post_text("/link/storagelink/", [
        category(STORAGELINK, "kind"), f'X-OCCI-Attribute: occi.core.source="{compute}"',
        f'X-OCCI-Attribute: occi.core.target="{storage}"',
        'X-OCCI-Attribute: occi.storagelink.mountpoint="/data"'])
    assert response.status_code == 201
    link = response.headers["Location"].removeprefix("http://localhost")
    text = client.get(link).get_data(as_text=True)
    assert text.startswith(f'Category: storagelink; scheme="{INFRA}"; class="kind"')
    assert "Link:" not in text
    assert f'occi.core.source="{compute}"' in text
    assert client.get("/link/", accept="text/uri-list").get_data(as_text=True).strip() == \
        f"http://localhost{link}"


def test_direct_json_link(client: Client) -> None:
    compute, network = client.compute(), client.network()
    response = client.post_json("/link/networkinterface/", {
        "kind": NETWORKINTERFACE, "source": {"location": compute},
        "target": {"location": network, "kind": INFRA + "network"},
        "mixins": ["http://schemas.ogf.org/occi/infrastructure/networkinterface#"
                   "ipnetworkinterface"],
        "attributes": {"occi.networkinterface.allocation": "static",
                       "occi.networkinterface.address": "10.9.0.77"}})
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["attributes"]["occi.networkinterface.address"] == "10.9.0.77"


def test_addresses_are_never_reused(client: Client) -> None:
    network = client.network("10.8.0.0/29", "10.8.0.1")
    addresses = []
    for _ in range(5):
        path = client.compute(f'Link: <{network}>; rel="{INFRA}network"')
        addresses.append(client.json(path)["links"][0]["attributes"][
            "occi.networkinterface.address"])
    assert addresses == [f"10.8.0.{i}" for i in range(2, 7)]
    full = client.post_text("/compute/", [category(COMPUTE, "kind"),
                                          f'Link: <{network}>; rel="{INFRA}network"'])
    assert full.status_code == 409 and "no free address" in full.get_data(as_text=True)


def test_deleting_a_resource_deletes_its_links(client: Client) -> None:
    network = client.network()
    path = client.compute(f'Link: <{network}>; rel="{INFRA}network"')
    link = client.json(path)["links"][0]["id"]
    assert client.request("DELETE", path).status_code == 200
    assert client.get(f"/link/networkinterface/{link}").status_code == 404
    assert client.request("DELETE", network).status_code == 200


def test_deleting_a_linked_target_is_409(client: Client) -> None:
    storage = client.storage()
    client.compute(f'Link: <{storage}>; rel="{INFRA}storage"')
    response = client.request("DELETE", storage)
    assert response.status_code == 409
    assert "delete that link first" in response.get_data(as_text=True)


def test_a_volume_attaches_to_one_compute_only(client: Client) -> None:
    storage = client.storage()
    client.compute(f'Link: <{storage}>; rel="{INFRA}storage"')
    second = client.post_text("/compute/", [category(COMPUTE, "kind"),
                                            f'Link: <{storage}>; rel="{INFRA}storage"'])
    assert second.status_code == 409
    assert client.get("/compute/").get_data(as_text=True).count("Location") == 1


def test_deleting_a_link_detaches(client: Client) -> None:
    storage = client.storage()
    path = client.compute(f'Link: <{storage}>; rel="{INFRA}storage"')
    link = client.json(path)["links"][0]["id"]
    assert client.request("DELETE", f"/link/storagelink/{link}").status_code == 200
    assert "links" not in client.json(path)
    assert client.request("DELETE", storage).status_code == 200


def test_bad_links(client: Client) -> None:
    compute = client.compute()
    for lines, message in [
        ([category(STORAGELINK, "kind"), f'X-OCCI-Attribute: occi.core.source="{compute}"'],
         "occi.core.target"),
        ([category(STORAGELINK, "kind"), 'X-OCCI-Attribute: occi.core.target="/storage/x"',
          f'X-OCCI-Attribute: occi.core.source="{compute}"'], "does not exist"),
        ([category(STORAGELINK, "kind"), f'X-OCCI-Attribute: occi.core.target="{compute}"',
          f'X-OCCI-Attribute: occi.core.source="{compute}"'], "joins a compute to a storage"),
    ]:
        response = client.post_text("/link/storagelink/", lines)
        assert response.status_code == 400, lines
        assert message in response.get_data(as_text=True)
    assert client.get("/link/").get_data() == b""


def test_put_keeps_links_and_refuses_new_ones(client: Client) -> None:
    network, other = client.network(), client.network("10.7.0.0/24", None)
    path = client.compute(f'Link: <{network}>; rel="{INFRA}network"')
    echoed = client.request("PUT", path, data=client.get(path).get_data(),
                            headers={"Content-Type": "text/plain"})
    assert echoed.status_code == 200
    assert len(client.json(path)["links"]) == 1
    fresh = client.post_text(path, [category(COMPUTE, "kind"),
                                    f'Link: <{other}>; rel="{INFRA}network"'], method="PUT")
    assert fresh.status_code == 400
    assert len(client.json(path)["links"]) == 1


def test_json_partial_update_echoing_links_creates_none(client: Client) -> None:
    network = client.network()
    path = client.compute(f'Link: <{network}>; rel="{INFRA}network"')
    document = client.json(path)
    document["attributes"] = {"occi.core.title": "renamed"}
    document.pop("actions")
    response = client.post_json(path, document)
    assert response.status_code == 200, response.get_data(as_text=True)
    after = client.json(path)
    assert after["title"] == "renamed" and len(after["links"]) == 1
