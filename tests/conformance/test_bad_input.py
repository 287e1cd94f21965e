"""Bad input always gets a clear 4xx in the client's rendering, never a 5xx,
and nothing stored changes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import COMPUTE, Client, category

TEXT_LINE = st.one_of(
    st.text(max_size=80),
    st.builds(lambda a, b: f"{a}: {b}", st.sampled_from(
        ["Category", "Link", "X-OCCI-Attribute", "X-OCCI-Location", "Foo"]), st.text(max_size=60)),
    st.builds(lambda v: f"X-OCCI-Attribute: occi.compute.cores={v}", st.text(max_size=10)),
    st.builds(lambda v: f"Category: {v}", st.text(max_size=40)),
    st.just(category(COMPUTE, "kind")),
)
JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=20), st.just(COMPUTE)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(
                                ["kind", "mixins", "attributes", "id", "links", "source",
                                 "target", "action", "resources", "occi.compute.cores", "term",
                                 "scheme", "location"]), inner, max_size=5)),
    max_leaves=12)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def stored(client: Client) -> str:
    return client.compute('X-OCCI-Attribute: occi.core.title="keep me"')


def snapshot(client: Client) -> bytes:
    return client.get("/", accept="application/occi+json").get_data()


@SETTINGS
@given(lines=st.lists(TEXT_LINE, max_size=6), target=st.sampled_from(["compute", "entity"]),
       method=st.sampled_from(["POST", "PUT"]))
def test_text_bodies_never_cause_5xx(client: Client, stored, lines, target, method) -> None:
    path = "/compute/" if target == "compute" else stored
    if target == "compute" and method == "PUT":
        method = "POST"
    body = "\n".join(lines)
    before = snapshot(client)
    response = client.request(method, path, data=body.encode("utf-8", "surrogatepass"),
                              headers={"Content-Type": "text/plain"})
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        assert response.get_data(as_text=True).strip()
        assert snapshot(client) == before


@SETTINGS
@given(document=JSON_VALUE, path=st.sampled_from(["/compute/", "ENTITY", "ACTION", "/-/"]))
def test_json_bodies_never_cause_5xx(client: Client, stored, document, path) -> None:
    path = {"ENTITY": stored, "ACTION": stored + "?action=stop"}.get(path, path)
    before = snapshot(client)
    response = client.request("POST", path, data=json.dumps(document),
                              headers={"Content-Type": "application/occi+json",
                                       "Accept": "application/occi+json"})
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        error = response.get_json()
        assert error["code"] == response.status_code and error["message"]
        assert snapshot(client) == before


@SETTINGS
@given(value=st.text(max_size=120), name=st.sampled_from(
    ["Category", "X-OCCI-Attribute", "Link", "X-OCCI-Location"]))
def test_text_occi_headers_never_cause_5xx(client: Client, stored, value, name) -> None:
    safe = value.encode("latin-1", "ignore").decode("latin-1").replace("\n", " ").replace(
        "\r", " ")
    response = client.request("POST", "/compute/", headers={
        "Content-Type": "text/occi", name: safe})
    assert response.status_code < 500, response.get_data(as_text=True)


@pytest.mark.parametrize(("content_type", "body", "status", "message"), [
    ("application/occi+json", "{not json", 400, "not valid JSON"),
    ("application/occi+json", '{"kind": 5}', 400, "kind"),
    ("application/occi+json", '{"kind": "http://x#y", "bogus": 1}', 400, "bogus"),
    ("text/plain", "Category compute", 400, "Name: value"),
    ("text/plain", 'Category: compute; scheme="x#"; class="kind"', 400, "unknown kind"),
    ("text/plain", f"{category(COMPUTE, 'kind')}\nX-OCCI-Attribute: occi.compute.cores=\"x\"",
     400, "integer"),
    ("text/plain", f"{category(COMPUTE, 'kind')}\nLink: /network/1", 400, "<target>"),
    ("text/plain", "X-OCCI-Attribute: occi.core.title=\"no kind\"", 400, "names no kind"),
    ("text/plain", "", 400, "no entity"),
    ("text/plain", b"\xff\xfe", 400, "UTF-8"),
    ("application/xml", "<compute/>", 415, "Content-Type"),
])
def test_bad_creates(client: Client, stored, content_type: str, body, status: int,
                     message: str) -> None:
    before = snapshot(client)
    response = client.request("POST", "/compute/", data=body,
                              headers={"Content-Type": content_type})
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert snapshot(client) == before


@pytest.mark.parametrize("accept", ["text/plain", "text/occi", "application/occi+json",
                                    "text/uri-list"])
def test_errors_come_in_the_clients_rendering(client: Client, accept: str) -> None:
    response = client.get("/compute/nope", accept=accept)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == accept
    if accept == "text/occi":
        assert "nothing at /compute/nope" in response.headers["X-OCCI-Error"]
    elif accept == "application/occi+json":
        assert response.get_json() == {"code": 404, "message": "nothing at /compute/nope"}
    else:
        assert "nothing at /compute/nope" in response.get_data(as_text=True)


# ---------------------------------------------------------------- what a fuzzer found
KIND_LINE = category(COMPUTE, "kind")


@pytest.mark.parametrize(("content_type", "body", "message"), [
    ("application/occi+json", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("application/occi+json", json.dumps({"kind": COMPUTE}).replace(
        "}", ', "attributes": {"occi.compute.cores": ' + "9" * 5000 + "}}"), "not valid JSON"),
    ("text/plain", f"{KIND_LINE}\nX-OCCI-Attribute: occi.compute.cores={'9' * 5000}",
     "too many digits"),
    ("text/plain", f'{KIND_LINE}\nX-OCCI-Attribute: occi.core.title="x\\ud800y"', "surrogate"),
    ("text/plain", f'{KIND_LINE}\nX-OCCI-Attribute: occi.core.title="a\\u0001b"', "U+0001"),
    ("application/occi+json", json.dumps({"kind": COMPUTE, "attributes": {
        "occi.core.title": "x\ud800y"}}), "U+D800"),
    ("application/occi+json", json.dumps({"kind": COMPUTE, "attributes": {
        "occi.core.title": "bell\u0007"}}), "U+0007"),
])
def test_hostile_bodies_are_400_and_store_nothing(client: Client, stored, content_type: str,
                                                  body: str, message: str) -> None:
    before = snapshot(client)
    response = client.request("POST", "/compute/", data=body.encode("utf-8", "surrogatepass"),
                              headers={"Content-Type": content_type})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert message in response.get_data(as_text=True)
    assert snapshot(client) == before


@pytest.mark.parametrize("query", ["/compute/?page=²", "/compute/?number=¹", "/jobs/?limit=¹",
                                   "/compute/?page=99999999999999999999"])
def test_numbers_in_query_strings_are_ascii_digits(client: Client, query: str) -> None:
    response = client.get(query)
    assert response.status_code == 400 and "whole number" in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/compute/a%01b", "/compute/a%0Ab", "/a%7Fb/"])
def test_no_header_carries_a_control_character(client: Client, path: str) -> None:
    response = client.get(path, accept="text/occi")
    assert response.status_code == 404
    for name, value in response.headers.items():
        assert not any(ord(c) < 32 or ord(c) == 127 for c in name + value), (name, value)
    assert response.headers["X-OCCI-Error"]


def test_request_paths_are_logged_escaped(client: Client, caplog) -> None:
    with caplog.at_level("INFO", logger="occi_server.http"):
        client.get("/compute/x%0A2026-01-01 00:00:00 INFO forged")
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("request ")]
    assert "\n" not in line and 'path="/compute/x\\n2026' in line
