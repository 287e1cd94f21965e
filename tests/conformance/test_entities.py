"""GFD.223 §3.4: GET, PUT, POST (partial update) and DELETE on entities."""

from __future__ import annotations

import os

import pytest

from occi_server.rendering.json import validator
from tests.conftest import COMPUTE, CRTP, SITE, STORAGE, Client, category

KIND = category(COMPUTE, "kind")


def test_create_answers_201_with_absolute_location(client: Client) -> None:
    response = client.post_text("/compute/", [KIND, 'X-OCCI-Attribute: occi.core.title="a"'])
    assert response.status_code == 201
    location = response.headers["Location"]
    assert location.startswith("http://localhost/compute/")
    body = response.get_data(as_text=True)
    assert body == f"X-OCCI-Location: {location}"
    # IM's OCCI connector takes the id as os.path.basename(body), unstripped.
    assert os.path.basename(body) == location.rpartition("/")[2]


@pytest.mark.parametrize(("accept", "body"), [
    ("text/occi", "OK"), ("text/uri-list", "{location}\r\n")])
def test_create_response_in_other_renderings(client: Client, accept: str, body: str) -> None:
    response = client.post_text("/compute/", [KIND], accept=accept)
    assert response.status_code == 201
    location = response.headers["Location"]
    assert response.get_data(as_text=True) == body.format(location=location)
    if accept == "text/occi":
        assert response.headers["X-OCCI-Location"] == location


def test_json_create_returns_the_full_rendering(client: Client) -> None:
    response = client.post_json("/compute/", {"kind": COMPUTE, "title": "j1"})
    assert response.status_code == 201
    document = response.get_json()
    assert not list(validator("resource.json").iter_errors(document))
    assert response.headers["Location"].endswith(document["id"])
    assert document["attributes"]["occi.core.title"] == "j1"


def test_get_renders_kind_mixins_attributes_and_actions(client: Client) -> None:
    path = client.compute('X-OCCI-Attribute: occi.core.title="web01"',
                          mixins=(CRTP + "medium",))
    text = client.get(path).get_data(as_text=True)
    lines = text.splitlines()
    assert lines[0].startswith('Category: compute; scheme="http://schemas.ogf.org/occi/'
                               'infrastructure#"; class="kind"')
    assert any(line.startswith("Category: medium;") for line in lines)
    assert f'Link: <{path}?action=stop>; rel="http://schemas.ogf.org/occi/infrastructure/' \
           'compute/action#stop"' in lines
    assert not any("action=start" in line for line in lines)  # not applicable when active
    assert "X-OCCI-Attribute: occi.compute.cores=2" in lines
    assert "X-OCCI-Attribute: occi.compute.memory=2.0" in lines
    order = [lines.index(next(line for line in lines if line.startswith(p)))
             for p in ("Category:", "Link:", "X-OCCI-Attribute:")]
    assert order == sorted(order)


def test_client_supplied_id_is_honoured(client: Client) -> None:
    response = client.post_text("/compute/", [
        KIND, 'X-OCCI-Attribute: occi.core.id="1b4e28ba-2fa1-11d2-883f-0016d3cca427"'])
    assert response.headers["Location"].endswith("/compute/1b4e28ba-2fa1-11d2-883f-0016d3cca427")
    again = client.post_text("/compute/", [
        KIND, 'X-OCCI-Attribute: occi.core.id="1b4e28ba-2fa1-11d2-883f-0016d3cca427"'])
    assert again.status_code == 409


def test_delete_is_visible_at_once(client: Client) -> None:
    path = client.compute()
    response = client.request("DELETE", path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain"
    assert client.get(path).status_code == 404
    assert client.request("DELETE", path).status_code == 404
    assert path not in client.get("/compute/").get_data(as_text=True)


def test_partial_update_changes_only_what_is_given(client: Client) -> None:
    path = client.compute('X-OCCI-Attribute: occi.core.title="before"',
                          'X-OCCI-Attribute: occi.compute.hostname="h1"')
    response = client.post_text(path, ['X-OCCI-Attribute: occi.core.title="after"'])
    assert response.status_code == 200
    attributes = client.attributes(path)
    assert attributes["occi.core.title"] == "after"
    assert attributes["occi.compute.hostname"] == "h1"


def test_adding_a_resource_template_replaces_the_old_one_and_resizes(client: Client) -> None:
    path = client.compute(mixins=(CRTP + "small",))
    response = client.post_text(path, [category(CRTP + "large", "mixin")])
    assert response.status_code == 200
    document = client.json(path)
    assert CRTP + "large" in document["mixins"] and CRTP + "small" not in document["mixins"]
    assert document["attributes"]["occi.compute.cores"] == 4
    assert document["attributes"]["occi.compute.memory"] == 4.0


def test_template_values_win_over_client_sizes(client: Client) -> None:
    path = client.compute("X-OCCI-Attribute: occi.compute.cores=8", mixins=(CRTP + "small",))
    assert client.attributes(path)["occi.compute.cores"] == 1


def test_without_a_template_the_default_flavour_sizes_apply(client: Client) -> None:
    attributes = client.attributes(client.compute())
    assert (attributes["occi.compute.cores"], attributes["occi.compute.memory"]) == (1, 1.0)


def test_changing_the_os_template_is_refused(client: Client) -> None:
    path = client.compute(mixins=(SITE + "os_tpl#debian-12",))
    response = client.post_text(path, [category(SITE + "os_tpl#alpine-3", "mixin")])
    assert response.status_code == 400
    assert "only be given when" in response.get_data(as_text=True)


@pytest.mark.parametrize("accept", ["text/plain", "text/occi", "application/occi+json"])
def test_put_of_the_own_rendering_is_accepted(client: Client, accept: str) -> None:
    """A client may GET an entity and PUT it back: immutable values unchanged and
    action links echoed."""
    path = client.compute('X-OCCI-Attribute: occi.core.title="echo"', mixins=(CRTP + "small",))
    before = client.attributes(path)
    got = client.get(path, accept=accept)
    content_type = "application/occi+json" if "json" in accept else accept
    headers = {"Content-Type": content_type, "Accept": accept}
    if accept == "text/occi":
        headers.update({k: v for k, v in got.headers.items()
                        if k in ("Category", "Link", "X-OCCI-Attribute")})
    response = client.request("PUT", path, data=got.get_data(), headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert client.attributes(path) == before


def test_put_replaces_mutable_attributes(client: Client) -> None:
    path = client.compute('X-OCCI-Attribute: occi.core.title="t"',
                          'X-OCCI-Attribute: occi.compute.hostname="h"')
    response = client.post_text(path, [KIND, 'X-OCCI-Attribute: occi.compute.hostname="h2"'],
                                method="PUT")
    assert response.status_code == 200
    attributes = client.attributes(path)
    assert attributes["occi.compute.hostname"] == "h2"
    assert "occi.core.title" not in attributes
    assert attributes["occi.compute.state"] == "active"


def test_put_creates_at_a_new_path(client: Client) -> None:
    response = client.post_text("/storage/vol-1", [
        category(STORAGE, "kind"), "X-OCCI-Attribute: occi.storage.size=2.5"], method="PUT")
    assert response.status_code == 201
    assert response.headers["Location"] == "http://localhost/storage/vol-1"
    assert client.attributes("/storage/vol-1")["occi.storage.size"] == 2.5


@pytest.mark.parametrize(("lines", "message"), [
    (['X-OCCI-Attribute: occi.compute.state="inactive"'], "set by the server"),
    (['X-OCCI-Attribute: occi.core.id="other"'], "cannot change"),
    ([category(STORAGE, "kind")], "kind of"),
    (["X-OCCI-Attribute: occi.compute.cores=0"], "minimum"),
    (["X-OCCI-Attribute: occi.compute.nonsense=1"], "not defined"),
])
def test_bad_updates_are_400_and_change_nothing(client: Client, lines: list[str],
                                                message: str) -> None:
    path = client.compute('X-OCCI-Attribute: occi.core.title="keep"')
    before = client.json(path)
    response = client.post_text(path, lines)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert client.json(path) == before


def test_storage_resize_by_update(client: Client) -> None:
    path = client.storage(1.0)
    assert client.post_text(path, ["X-OCCI-Attribute: occi.storage.size=3.0"]).status_code == 200
    assert client.attributes(path)["occi.storage.size"] == 3.0


def test_a_guest_that_cannot_see_its_grown_volume_is_named(make_app) -> None:
    """The volume grows regardless; the state message says which guest sees the
    new size only once the volume is attached again."""
    client = Client(make_app(simulated_failures=["compute.storage_grown"]))
    path = client.storage(1.0)
    compute = client.compute(f'Link: <{path}>; rel="http://schemas.ogf.org/occi/'
                             'infrastructure#storage"')
    assert client.post_text(path, ["X-OCCI-Attribute: occi.storage.size=2.0"]).status_code == 200
    attributes = client.attributes(path)
    assert attributes["occi.storage.size"] == 2.0
    assert f"{compute} sees the new size once the volume is attached again" in \
        attributes["occi.storage.state.message"]


def test_hostname_injection_is_refused(client: Client) -> None:
    response = client.post_text("/compute/", [
        KIND, "X-OCCI-Attribute: occi.compute.hostname=\"a'><disk\""])
    assert response.status_code == 400
    assert "host name" in response.get_data(as_text=True)


def test_an_x64_image_does_not_run_on_x86(client: Client) -> None:
    response = client.post_text("/compute/", [
        KIND, category(SITE + "os_tpl#debian-12", "mixin"),
        'X-OCCI-Attribute: occi.compute.architecture="i686"'])
    assert response.status_code == 400
    assert "x64 image" in response.get_data(as_text=True)
