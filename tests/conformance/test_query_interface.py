"""GFD.223 §3.6 / GFD.221 discovery: GET /-/, filtering, user-defined mixins."""

from __future__ import annotations

import re

import pytest

from occi_server.rendering.json import validator
from occi_server.rendering.textcodec import parse_category, split_outside_quotes
from tests.conftest import COMPUTE, CRTP, INFRA, Client

USER_MIXIN = ('Category: my_stuff; scheme="http://example.com/tags#"; class="mixin"; '
              'title="My stuff"; location="/my_stuff/"')


def categories(client: Client, path: str = "/-/", **kwargs) -> dict:
    response = client.get(path, **kwargs)
    assert response.status_code == 200
    lines = response.get_data(as_text=True).splitlines()
    parsed = [parse_category(line.partition(": ")[2]) for line in lines]
    return {c.type_id: c for c in parsed}


@pytest.mark.parametrize("path", ["/-/", "/-", "/.well-known/org/ogf/occi/-/"])
def test_query_interface_paths_agree(client: Client, path: str) -> None:
    assert client.get(path).get_data() == client.get("/-/").get_data()


def test_discovery_lists_kinds_mixins_and_actions(client: Client) -> None:
    found = categories(client)
    for term in ("entity", "resource", "link"):
        assert found[f"http://schemas.ogf.org/occi/core#{term}"].category_class == "kind"
    compute = found[COMPUTE]
    assert compute.location == "/compute/"
    assert compute.rel == ["http://schemas.ogf.org/occi/core#resource"]
    for action in compute.actions:
        assert action.startswith("http://")
        assert found[action].category_class == "action"
    assert found[INFRA + "os_tpl"].category_class == "mixin"
    assert "http://schemas.openstack.org/instance/credentials#public_key" in found
    assert "http://schemas.openstack.org/compute/instance#user_data" in found


def test_templates_carry_a_single_rel(client: Client) -> None:
    response = client.get("/-/").get_data(as_text=True)
    templates = [line for line in response.splitlines()
                 if 'rel="http://schemas.ogf.org/occi/infrastructure#os_tpl' in line
                 or 'rel="http://schemas.ogf.org/occi/infrastructure#resource_tpl' in line]
    assert len(templates) >= 8
    for line in templates:
        rel = line.split('rel="')[1].split('"')[0]
        assert " " not in rel


def test_no_empty_quoted_values_and_only_true_requirements(client: Client) -> None:
    text = client.get("/-/").get_data(as_text=True)
    assert '=""' not in text
    required = set(re.findall(r'([\w.]+)\{[^}]*required', text))
    assert required == {
        "occi.core.source", "occi.core.target", "occi.storage.size",
        "occi.credentials.ssh.publickey", "occi.compute.userdata",
        "org.openstack.credentials.publickey.data", "org.openstack.compute.user_data",
        "occi.compute.anti_affinity_group"}


def test_text_occi_carries_categories_in_headers(client: Client) -> None:
    response = client.get("/-/", accept="text/occi")
    assert response.get_data(as_text=True) == "OK"
    values = split_outside_quotes(response.headers["Category"], ",")
    assert len(values) == len(categories(client))


def test_json_query_interface_matches_its_schema(client: Client) -> None:
    document = client.json("/-/")
    assert not list(validator("query-interface.json").iter_errors(document))
    compute = next(k for k in document["kinds"] if k["term"] == "compute")
    state = compute["attributes"]["occi.compute.state"]
    assert state["mutable"] is False
    assert state["pattern"]["enum"] == ["active", "inactive", "suspended", "error", "waiting"]
    assert {m["term"] for m in document["mixins"]} >= {"os_tpl", "resource_tpl", "ssh_key"}
    assert {a["term"] for a in document["actions"]} >= {"start", "stop", "up", "online"}


def test_filter_by_kind_returns_it_with_its_actions(client: Client) -> None:
    found = categories(client, headers={
        "Category": 'compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
                    'class="kind"', "Content-Type": "text/occi"})
    assert COMPUTE in found
    assert {c.category_class for c in found.values()} == {"kind", "action"}
    assert len(found) == 6


def test_filter_by_template_parent_returns_the_family(client: Client) -> None:
    found = categories(client, headers={
        "Category": 'resource_tpl; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
                    'class="mixin"'})
    assert INFRA + "resource_tpl" in found
    assert len(found) == 7  # the parent and the six CRTP flavours


def test_filter_by_query_parameter(client: Client) -> None:
    assert set(categories(client, "/-/?category=storage")) >= {INFRA + "storage"}


def test_user_mixin_lifecycle(client: Client) -> None:
    created = client.post_text("/-/", [USER_MIXIN])
    assert created.status_code == 200
    assert "my_stuff" in created.get_data(as_text=True)
    assert "http://example.com/tags#my_stuff" in categories(client)
    assert client.get("/my_stuff/").status_code == 200
    compute = client.compute()
    associated = client.post_text("/my_stuff/", [f"X-OCCI-Location: {compute}"])
    assert associated.status_code == 200
    assert compute in associated.get_data(as_text=True)
    assert "http://example.com/tags#my_stuff" in client.json(compute)["mixins"]
    deleted = client.post_text("/-/", ['Category: my_stuff; scheme="http://example.com/tags#"; '
                                       'class="mixin"'], method="DELETE")
    assert deleted.status_code == 200
    assert client.get("/my_stuff/").status_code == 404
    assert "http://example.com/tags#my_stuff" not in client.json(compute).get("mixins", [])


def test_user_mixin_in_json_and_delete_by_query(client: Client) -> None:
    response = client.post_json("/-/", {"mixins": [{
        "term": "project_x", "scheme": "http://example.com/tags#", "location": "/project_x/"}]})
    assert response.status_code == 200
    assert response.get_json()["mixins"][0]["location"] == "/project_x/"
    gone = client.request("DELETE", "/-/?category=http%3A%2F%2Fexample.com%2Ftags%23project_x")
    assert gone.status_code == 200
    assert client.get("/project_x/").status_code == 404


@pytest.mark.parametrize(("lines", "status", "message"), [
    ([USER_MIXIN, USER_MIXIN.replace("/my_stuff/", "/other/")], 409, "already exists"),
    ([USER_MIXIN.replace("/my_stuff/", "/compute/")], 409, "already used"),
    ([USER_MIXIN.replace("/my_stuff/", "/compute/mine/")], 409, "inside the compute"),
    ([USER_MIXIN.replace("/my_stuff/", "/-/")], 409, "reserved"),
    ([USER_MIXIN.replace("/my_stuff/", "my_stuff")], 400, "starts and ends"),
    ([USER_MIXIN.replace('; location="/my_stuff/"', "")], 400, "needs a location"),
    ([USER_MIXIN.replace("http://example.com/tags#", "http://schemas.ogf.org/occi/x#")],
     400, "reserved"),
    ([USER_MIXIN.replace('class="mixin"', 'class="kind"')], 400, "only mixins"),
    ([USER_MIXIN + '; attributes="com.example.a"'], 400, "tags"),
    (["X-OCCI-Attribute: a=1"], 400, "names no mixin"),
])
def test_bad_user_mixins(client: Client, lines: list[str], status: int, message: str) -> None:
    response = None
    for line in lines:
        response = client.post_text("/-/", [line])
    assert response is not None and response.status_code == status
    assert message in response.get_data(as_text=True)


def test_provider_mixins_cannot_be_deleted(client: Client) -> None:
    response = client.post_text("/-/", ['Category: small; scheme="http://schemas.ogf.org/occi/'
                                        'infrastructure/compute/template/1.1#"; class="mixin"'],
                                method="DELETE")
    assert response.status_code == 403


def test_unknown_mixin_delete_is_404(client: Client) -> None:
    response = client.post_text("/-/", ['Category: nope; scheme="http://example.com/x#"; '
                                        'class="mixin"'], method="DELETE")
    assert response.status_code == 404


def test_a_user_mixin_may_depend_on_a_template_and_stays_a_tag(client: Client) -> None:
    """pOCCI's CORE/CREATE/006, as it sends it: the tag is listed with the
    templates it depends on, and tagging a compute leaves its size template and
    sizes as they were."""
    created = client.post_text("/-/", [
        'Category: stufik; scheme="http://example.com/occi/my_stuff#"; class="mixin"; '
        'location="/mixin/resource_tpl/extra_large/"; '
        'rel="http://schemas.ogf.org/occi/infrastructure#resource_tpl"'])
    assert created.status_code == 200, created.get_data(as_text=True)
    large = CRTP + "large"
    compute = client.compute(mixins=(large,))
    assert client.post_text("/mixin/resource_tpl/extra_large/",
                            [f"X-OCCI-Location: {compute}"]).status_code == 200
    shown = client.json(compute)
    assert {large, "http://example.com/occi/my_stuff#stufik"} <= set(shown["mixins"])
    assert shown["attributes"]["occi.compute.cores"] == 4
    assert compute in client.get("/mixin/resource_tpl/", accept="text/uri-list").get_data(
        as_text=True)


def test_workers_sharing_a_store_see_each_others_mixins_at_once(make_app, tmp_path) -> None:
    """Each worker keeps the model it built; a mixin another worker adds or
    removes shows in the next request all the same (the store's model
    generation changes with it)."""
    data = {"data_dir": str(tmp_path / "shared")}
    first, second = Client(make_app(**data)), Client(make_app(**data))
    mixin = "http://example.com/tags#my_stuff"
    assert mixin not in categories(first)
    assert second.post_text("/-/", [USER_MIXIN]).status_code == 200
    assert mixin in categories(first)
    assert first.get("/my_stuff/").status_code == 200
    deleted = second.post_text("/-/", [USER_MIXIN.split("; title")[0]], method="DELETE")
    assert deleted.status_code == 200
    assert mixin not in categories(first)
    assert first.get("/my_stuff/").status_code == 404


def test_discovery_and_reads_take_one_transaction_or_none(client: Client) -> None:
    from sqlalchemy import event

    begun = []
    event.listen(client.app.extensions["occi.store"].engine, "begin", begun.append)
    compute = client.compute()
    # Read again with nothing changed, they come from memory.
    for path, transactions in (("/-/", 1), ("/-/", 0), (compute, 1), (compute, 0),
                               ("/compute/", 1), ("/compute/", 0)):
        begun.clear()
        assert client.get(path).status_code == 200
        assert len(begun) == transactions, path


def test_the_interface_kept_in_memory_answers_each_host_and_rendering_its_own(
        client: Client) -> None:
    plain = client.get("/-/").get_data(as_text=True)
    other = client.get("/-/", headers={"Host": "cloud.example.org:8443"}).get_data(as_text=True)
    assert 'location="/compute/"' in plain and plain == other  # locations are paths here
    as_json = client.json("/-/")
    assert {k["term"] for k in as_json["kinds"]} >= {"compute", "storage", "network"}
    assert client.get("/-/", accept="text/occi").headers["Category"].count("class=") \
        == plain.count("Category:")
    again = client.get("/-/").get_data(as_text=True)
    assert again == plain
