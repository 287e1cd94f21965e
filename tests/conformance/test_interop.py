"""Requests as deployed OCCI clients send them (rOCCI-cli 4, pOCCI, erocci)."""

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
