"""Requests as deployed OCCI clients send them (rOCCI-cli 4 and 5, pOCCI, erocci)."""

from __future__ import annotations

import base64

import pytest

from tests.conftest import COMPUTE, SITE, Client, category

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
OPENSTACK_KEY = ('public_key;scheme="http://schemas.openstack.org/instance/credentials#";'
                 'class="mixin"')
OPENSTACK_DATA = ('user_data;scheme="http://schemas.openstack.org/compute/instance#";'
                  'class="mixin"')


def test_rocci_cli_create_in_text_occi_headers(client: Client) -> None:
    storage = client.storage()
    user_data = base64.b64encode(b"#cloud-config\nhostname: x\n").decode()
    response = client.request("POST", "/compute/", headers={
        "Content-Type": "text/occi",
        "Accept": "text/plain,text/occi;q=0.2",
        "User-Agent": "rOCCI-cli/4.3.10 rOCCI-core/4.3.14 OCCI/1.1",
        "Category": f'compute;scheme="{INFRA}";class="kind",'
                    f'debian-12;scheme="{SITE}os_tpl#";class="mixin",'
                    f"{OPENSTACK_KEY},{OPENSTACK_DATA}",
        "X-OCCI-Attribute": 'occi.core.id="7c3a8d4e-0000-4000-8000-000000000001",'
                            'occi.core.title="rocci, with a comma",'
                            'org.openstack.credentials.publickey.name="default",'
                            'org.openstack.credentials.publickey.data="ssh-ed25519 AAAA u@h",'
                            f'org.openstack.compute.user_data="{user_data}"',
        "Link": f'<{storage}>;rel="{INFRA}storage";category="{INFRA}storagelink";'
                'occi.core.id="7c3a8d4e-0000-4000-8000-0000000000aa";'
                f'occi.core.target="{storage}"',
    })
    assert response.status_code == 201, response.get_data(as_text=True)
    path = "/compute/7c3a8d4e-0000-4000-8000-000000000001"
    assert response.headers["Location"] == f"http://localhost{path}"
    document = client.json(path)
    assert document["title"] == "rocci, with a comma"
    assert document["attributes"]["org.openstack.compute.user_data"] == user_data
    assert document["links"][0]["id"] == "7c3a8d4e-0000-4000-8000-0000000000aa"
    assert client.get("/compute/", accept="text/uri-list").get_data(as_text=True) == \
        f"http://localhost{path}\r\n"


def test_rocci_cli_5_security_groups_and_ip_reservations(make_app) -> None:
    """rOCCI-core 5 renders a list attribute as its JSON, quoted (Ruby's
    `to_json.inspect`), and links a compute to a group or reservation with
    Link headers whose rel names the target's kind."""
    client = Client(make_app(floating_ip_pools={"public": "192.0.2.128/28"}))
    agent = "rOCCI-cli/5.0.0 rOCCI-core/5.0.0 OCCI/1.2"
    rules = '"[{\\"protocol\\":\\"tcp\\",\\"range\\":\\"10.0.0.0/24\\",' \
            '\\"type\\":\\"inbound\\",\\"port\\":\\"22\\"}]"'
    group = client.request("POST", "/securitygroup/", headers={
        "Content-Type": "text/occi", "Accept": "text/plain", "User-Agent": agent,
        "Category": f'securitygroup;scheme="{INFRA}";class="kind";'
                    'location="/securitygroup/";title="OCCI Infrastructure Security Group"',
        "X-OCCI-Attribute": f'occi.core.title="ssh",occi.securitygroup.rules={rules}'})
    assert group.status_code == 201, group.get_data(as_text=True)
    group_path = group.headers["Location"].removeprefix("http://localhost")
    assert client.attributes(group_path)["occi.securitygroup.rules"] == [
        {"type": "inbound", "protocol": "tcp", "range": "10.0.0.0/24", "port": "22"}]
    reservation = client.request("POST", "/ipreservation/", headers={
        "Content-Type": "text/occi", "Accept": "text/plain", "User-Agent": agent,
        "Category": f'ipreservation;scheme="{INFRA}";class="kind"'})
    assert reservation.status_code == 201, reservation.get_data(as_text=True)
    address = reservation.headers["Location"].removeprefix("http://localhost")
    network = client.create("http://schemas.ogf.org/occi/infrastructure#network",
                            'X-OCCI-Attribute: occi.network.address="10.81.0.0/24"',
                            mixins=("http://schemas.ogf.org/occi/infrastructure/network#"
                                    "ipnetwork", "http://schemas.occi-server.org/occi/"
                                    "infrastructure/network#public"))
    compute = client.request("POST", "/compute/", headers={
        "Content-Type": "text/occi", "Accept": "text/plain", "User-Agent": agent,
        "Category": f'compute;scheme="{INFRA}";class="kind"',
        "Link": f'<{network}>;rel="{INFRA}network";category="{INFRA}networkinterface",'
                f'<{group_path}>;rel="{INFRA}securitygroup";'
                f'category="{INFRA}securitygrouplink"'})
    assert compute.status_code == 201, compute.get_data(as_text=True)
    compute_path = compute.headers["Location"].removeprefix("http://localhost")
    led = client.request("POST", "/link/networkinterface/", headers={
        "Content-Type": "text/occi", "Accept": "text/plain", "User-Agent": agent,
        "Category": f'networkinterface;scheme="{INFRA}";class="kind"',
        "X-OCCI-Attribute": f'occi.core.source="{compute_path}",'
                            f'occi.core.target="{address}"'})
    assert led.status_code == 201, led.get_data(as_text=True)
    assert sorted(link["kind"].rpartition("#")[2] for link in client.json(compute_path)[
        "links"]) == ["networkinterface", "networkinterface", "securitygrouplink"]
    assert client.attributes(address)["occi.ipreservation.used"] is True


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\n\r"])
def test_request_lines_may_end_in_any_newline(client: Client, newline: str) -> None:
    body = newline.join([category(COMPUTE, "kind"), 'X-OCCI-Attribute: occi.core.title="n"',
                         "X-OCCI-Attribute: occi.compute.cores=2"]) + newline
    response = client.request("POST", "/compute/", data=body,
                              headers={"Content-Type": "text/plain"})
    assert response.status_code == 201
    path = response.headers["Location"].removeprefix("http://localhost")
    assert client.attributes(path)["occi.compute.cores"] == 2


def test_lower_case_names_and_unquoted_class(client: Client) -> None:
    response = client.request("POST", "/compute/", data=(
        f"category: compute; scheme=\"{INFRA}\"; class=kind\n"
        "x-occi-attribute: occi.core.title=\"erocci\"\n"), headers={"Content-Type": "text/plain"})
    assert response.status_code == 201


def test_pocci_discovery_filter_with_content_type_on_get(client: Client) -> None:
    response = client.get("/-/", headers={
        "Content-Type": "text/occi",
        "Category": f'network; scheme="{INFRA}"; class="kind"'})
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("Category: network;")


def test_both_variants_of_a_context_mixin_are_409(client: Client) -> None:
    response = client.post_text("/compute/", [
        category(COMPUTE, "kind"),
        category("http://schemas.ogf.org/occi/infrastructure/compute#user_data", "mixin"),
        category("http://schemas.openstack.org/compute/instance#user_data", "mixin"),
        'X-OCCI-Attribute: occi.compute.userdata="aGk="',
        'X-OCCI-Attribute: org.openstack.compute.user_data="aGk="'])
    assert response.status_code == 409


def test_user_data_over_the_cap_is_400(client: Client) -> None:
    too_big = base64.b64encode(b"x" * (64 * 1024 + 1)).decode()
    response = client.post_text("/compute/", [
        category(COMPUTE, "kind"),
        category("http://schemas.ogf.org/occi/infrastructure/compute#user_data", "mixin"),
        f'X-OCCI-Attribute: occi.compute.userdata="{too_big}"'])
    assert response.status_code == 400
    assert "occi.compute.userdata" in response.get_data(as_text=True)


def test_ssh_key_mixin_needs_its_key(client: Client) -> None:
    response = client.post_text("/compute/", [
        category(COMPUTE, "kind"),
        category("http://schemas.ogf.org/occi/infrastructure/credentials#ssh_key", "mixin")])
    assert response.status_code == 400
    assert "occi.credentials.ssh.publickey" in response.get_data(as_text=True)


def test_x86_64_architecture_is_normalised(client: Client) -> None:
    path = client.compute('X-OCCI-Attribute: occi.compute.architecture="x86_64"')
    assert client.attributes(path)["occi.compute.architecture"] == "x64"


def test_location_header_alias_for_mixin_association(client: Client) -> None:
    compute = client.compute()
    client.post_text("/-/", ['Category: t; scheme="http://example.com/t#"; class="mixin"; '
                             'location="/t/"'])
    response = client.request("POST", "/t/", headers={
        "Content-Type": "text/occi", "Location": f"http://localhost{compute}"})
    assert response.status_code == 200
    assert compute in response.get_data(as_text=True)


def test_titles_the_server_chooses_hold_nothing_naive_parsers_split_on(app) -> None:
    """pOCCI splits category parameters on ';' even inside quotes; others split
    on ','. No title this server declares gives them the chance."""
    service = app.extensions["occi.service"]
    with service.store.transaction(write=False) as repo:
        served = service.model(repo).categories()
    titles = {c.type_id: c.title or "" for c in served}
    assert len(titles) >= 40  # kinds, mixins, actions, flavours, images, backend tags
    offending = {type_id: title for type_id, title in titles.items()
                 if any(c in title for c in ';,"\\') or any(ord(c) < 32 for c in title)}
    assert offending == {}
