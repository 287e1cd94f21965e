"""GFD.223 §3.2, §3.3, §3.10: headers, versions, methods and status lines."""

from __future__ import annotations

import base64

import pytest
from werkzeug.security import generate_password_hash

from occi_server import SERVER_HEADER
from tests.conftest import Client

PATHS = ["/-/", "/compute/", "/mixin/os_tpl/", "/nowhere", "/compute/missing"]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("accept", ["text/plain", "text/occi", "application/occi+json",
                                    "application/json", "text/uri-list"])
def test_every_response_has_server_and_negotiated_content_type(client: Client, path: str,
                                                               accept: str) -> None:
    response = client.get(path, accept=accept)
    assert response.headers["Server"] == SERVER_HEADER
    assert "OCCI/1.2" in response.headers["Server"]
    assert response.status_code < 500
    listing = path.endswith("/") and path != "/-/"
    if accept == "text/uri-list" and not listing and response.status_code != 404:
        assert response.status_code == 400
    expected = accept if (accept != "text/uri-list" or listing or response.status_code >= 400) \
        else "text/plain"
    assert response.headers["Content-Type"] == expected


def test_reason_phrases_are_standard(client: Client) -> None:
    assert client.get("/-/").status == "200 OK"
    created = client.post_text("/compute/", [
        'Category: compute; scheme="http://schemas.ogf.org/occi/infrastructure#"; class="kind"'])
    assert created.status == "201 Created"
    assert client.get("/nowhere").status == "404 Not Found"


def test_higher_client_version_is_501(client: Client) -> None:
    response = client.get("/-/", headers={"User-Agent": "rOCCI-cli/9 OCCI/1.1 OCCI/1.3"})
    assert response.status_code == 501
    assert "1.3" in response.get_data(as_text=True)


def test_lower_client_version_is_served(client: Client) -> None:
    response = client.get("/-/", headers={"User-Agent": "rOCCI-cli/4.3.10 OCCI/1.1"})
    assert response.status_code == 200


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("PUT", "/compute/", "GET, HEAD, POST, DELETE"),
    ("PUT", "/-/", "GET, HEAD, POST, DELETE"),
    ("POST", "/", "GET, HEAD"),
])
def test_undefined_method_is_405_with_allow(client: Client, method: str, path: str,
                                            allowed: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed


def test_head_is_get_without_body(client: Client) -> None:
    head = client.request("HEAD", "/-/")
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Content-Type"] == "text/plain"


def test_options_lists_the_methods(client: Client) -> None:
    response = client.request("OPTIONS", "/compute/")
    assert response.status_code == 200
    assert response.headers["Allow"] == "GET, HEAD, POST, DELETE, OPTIONS"


def test_oversize_body_is_413(make_app) -> None:
    client = Client(make_app(max_body_bytes=1000))
    response = client.post_text("/compute/", ["X-OCCI-Attribute: a=" + "1" * 2000])
    assert response.status_code == 413
    assert "1000 bytes" in response.get_data(as_text=True)


class TestBasicAuth:
    @pytest.fixture
    def client(self, make_app) -> Client:
        return Client(make_app(auth="basic", users={"alice": generate_password_hash("s3cret")}))

    @staticmethod
    def credentials(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def test_missing_credentials_are_401_with_a_challenge(self, client: Client) -> None:
        response = client.get("/-/", accept="application/occi+json")
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="occi-server"')
        assert response.get_json()["code"] == 401

    def test_wrong_password_is_401(self, client: Client) -> None:
        assert client.get("/-/", headers=self.credentials("alice", "nope")).status_code == 401

    def test_right_password_is_served(self, client: Client) -> None:
        assert client.get("/-/", headers=self.credentials("alice", "s3cret")).status_code == 200


def test_credentials_sent_to_a_no_auth_server_are_accepted(client: Client) -> None:
    response = client.get("/-/", headers=TestBasicAuth.credentials("bob", "x"))
    assert response.status_code == 200
