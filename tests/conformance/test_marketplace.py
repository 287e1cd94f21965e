"""The marketplace's JSON API and the site policy that decides which images
become os_tpl mixins."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from occi_server.cli import main as occi_server
from occi_server.marketplace.entries import identifier, new_metadata
from occi_server.marketplace.signing import sign
from tests.conftest import SITE, Client
from tests.support.pki import Identity, issue

DEBIAN_BYTES = b"debian image bytes" * 100
DEBIAN_SHA256 = hashlib.sha256(DEBIAN_BYTES).hexdigest()


@pytest.fixture(scope="module")
def ca() -> Identity:
    return issue("Site CA", ca=True, days=365)


@pytest.fixture(scope="module")
def alice(ca: Identity) -> Identity:
    return issue("Alice", ca)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "debian.img"
    path.write_bytes(DEBIAN_BYTES)
    return path


@pytest.fixture
def site(make_app, tmp_path: Path, ca: Identity) -> Callable[..., Client]:
    """A site trusting the CA, offering a simulated image with the Debian bytes' checksum."""
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "ca.pem").write_bytes(ca.cert_pem)

    def make(**policy) -> Client:
        return Client(make_app(marketplace_ca_dir=str(tmp_path / "ca"),
                               marketplace_policy=policy, simulated_images=[
                                   {"term": "debian", "title": "Debian", "sha256": DEBIAN_SHA256},
                                   {"term": "local", "title": "Local, unendorsed"}]))
    return make


def entry(image: Path, signer: Identity, title: str = "Debian 12", **fields) -> dict:
    metadata = new_metadata(image, title=title, valid_days=30, os="linux", **fields)
    return sign(metadata, signer.key_pem, [signer.cert_pem])


def upload(client: Client, document) -> object:
    return client.http.post("/marketplace/api/entries", data=json.dumps(document),
                            headers={"Content-Type": "application/json",
                                     "Accept": "application/json"})


def test_upload_show_and_list(site, image: Path, alice: Identity, ca: Identity,
                              tmp_path: Path) -> None:
    client = site()
    response = upload(client, entry(image, alice))
    assert response.status_code == 201, response.get_data(as_text=True)
    image_id = identifier(DEBIAN_SHA256)
    assert response.headers["Location"].endswith(f"/marketplace/api/entries/{image_id}")
    bob_image = tmp_path / "other.img"
    bob_image.write_bytes(b"other")
    assert upload(client, entry(image, issue("Bob", ca), title="Debian (Bob)")
                  ).status_code == 201  # a second endorser of the same image
    assert upload(client, entry(bob_image, alice, title="Other", kind="disk")).status_code == 201
    shown = client.http.get(f"/marketplace/api/entries/{image_id}").get_json()
    assert sorted(e["endorser"]["subject"] for e in shown["endorsements"]) == [
        "CN=Alice,O=occi-server tests", "CN=Bob,O=occi-server tests"]
    listed = client.http.get("/marketplace/api/entries?sort=title&limit=2").get_json()
    assert listed["total"] == 3
    assert [e["title"] for e in listed["entries"]] == ["Debian (Bob)", "Debian 12"]
    page = client.http.get("/marketplace/api/entries?sort=title&limit=2&offset=2").get_json()
    assert [e["title"] for e in page["entries"]] == ["Other"]
    assert client.http.get("/marketplace/api/entries?kind=disk").get_json()["total"] == 1
    assert client.http.get("/marketplace/api/entries?endorser=bob").get_json()["total"] == 1
    assert client.http.get("/marketplace/api/entries?q=other").get_json()["total"] == 1


def test_refusals_say_why_and_store_nothing(site, image: Path, alice: Identity) -> None:
    client = site()
    document = entry(image, alice)
    document["metadata"]["title"] = "Changed"
    response = upload(client, document)
    assert response.status_code == 400
    assert "does not match" in response.get_json()["message"]
    stranger = issue("Stranger", issue("Other CA", ca=True))
    assert "unknown here" in upload(client, entry(image, stranger)).get_json()["message"]
    assert upload(client, "not an entry").status_code == 400
    assert client.http.get("/marketplace/api/entries").get_json()["total"] == 0
    for query in ("status=lost", "sort=size", "limit=0", "limit=x"):
        assert client.http.get(f"/marketplace/api/entries?{query}").status_code == 400
    assert client.http.get("/marketplace/api/entries/nothing").status_code == 404


def test_an_older_entry_does_not_replace_a_newer_one(site, image: Path,
                                                     alice: Identity) -> None:
    client = site()
    newer, older = entry(image, alice, title="New"), entry(image, alice, title="Old")
    older["metadata"]["created"] = "2026-01-01T00:00:00+00:00"
    older = sign(older["metadata"], alice.key_pem, [alice.cert_pem])
    assert upload(client, newer).status_code == 201
    assert upload(client, older).status_code == 200  # accepted, not kept
    assert [e["title"] for e in client.http.get("/marketplace/api/entries").get_json()[
        "entries"]] == ["New"]


def test_deprecation(site, image: Path, alice: Identity) -> None:
    client = site()
    upload(client, entry(image, alice))
    image_id = identifier(DEBIAN_SHA256)
    assert client.http.post(f"/marketplace/api/entries/{image_id}/deprecate").status_code == 200
    [listed] = client.http.get("/marketplace/api/entries").get_json()["entries"]
    assert listed["status"] == "deprecated"
    assert client.http.get("/marketplace/api/entries?status=valid").get_json()["total"] == 0
    assert client.http.post("/marketplace/api/entries/none/deprecate").status_code == 404


def test_the_api_describes_itself(site) -> None:
    document = site().http.get("/marketplace/api/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/marketplace/api/entries", "/marketplace/api/entries/{identifier}",
        "/marketplace/api/entries/{identifier}/deprecate"}


def os_templates(client: Client) -> dict[str, dict]:
    return {m["term"]: m for m in client.json("/-/")["mixins"]
            if m["scheme"] == SITE + "os_tpl#"}


def test_endorsed_images_carry_the_marketplace_attributes(site, image: Path,
                                                          alice: Identity) -> None:
    client = site()
    assert "occi_server.marketplace.identifier" not in os_templates(client)["debian"].get(
        "attributes", {})
    upload(client, entry(image, alice))
    attributes = os_templates(client)["debian"]["attributes"]
    assert attributes["occi_server.marketplace.identifier"]["default"] == identifier(
        DEBIAN_SHA256)
    assert attributes["occi_server.marketplace.endorsers"]["default"] == \
        "CN=Alice,O=occi-server tests"


@pytest.mark.parametrize(("policy", "published"), [
    ({}, {"debian", "local"}),
    ({"require_endorsement": True}, {"debian"}),
    ({"require_endorsement": True, "endorsers_denied": ["CN=Alice,O=occi-server tests"]},
     set()),
    ({"require_endorsement": True, "endorsers_allowed": ["CN=Bob,O=occi-server tests"]},
     set()),
    ({"checksums_denied": [DEBIAN_SHA256]}, {"local"}),
    ({"images_denied": [identifier(DEBIAN_SHA256)]}, {"local"}),
])
def test_the_site_policy_decides_what_is_published(site, image: Path, alice: Identity,
                                                    policy: dict, published: set) -> None:
    client = site(**policy)
    upload(client, entry(image, alice))
    assert set(os_templates(client)) == published


def test_a_deprecated_endorsement_no_longer_vouches(site, image: Path, alice: Identity) -> None:
    client = site(require_endorsement=True)
    upload(client, entry(image, alice))
    client.http.post(f"/marketplace/api/entries/{identifier(DEBIAN_SHA256)}/deprecate")
    assert set(os_templates(client)) == set()


def test_an_endorsement_that_ends_unpublishes_its_image_then(site, image: Path,
                                                             alice: Identity) -> None:
    """The model each worker keeps lasts no longer than the first validity to end."""
    client = site(require_endorsement=True)
    ends = datetime.now(UTC) + timedelta(seconds=1.5)
    metadata = new_metadata(image, title="Debian 12", valid_days=30, os="linux",
                            now=ends - timedelta(days=30))
    assert upload(client, sign(metadata, alice.key_pem, [alice.cert_pem])).status_code == 201
    assert set(os_templates(client)) == {"debian"}
    assert set(os_templates(client)) == {"debian"}  # kept, still valid
    time.sleep(max(0.0, (ends - datetime.now(UTC)).total_seconds()) + 0.1)
    assert set(os_templates(client)) == set()


def test_occi_server_signs_metadata_for_an_image(site, image: Path, alice: Identity,
                                                 tmp_path: Path, capsys) -> None:
    key, cert = alice.write(tmp_path, "alice")
    output = tmp_path / "entry.json"
    assert occi_server(["sign-metadata", str(image), "--key", str(key), "--cert", str(cert),
                        "--title", "Debian 12", "--os", "linux", "--endorser-email",
                        "alice@example.org", "--output", str(output)]) == 0
    document = json.loads(output.read_text())
    assert document["metadata"]["checksums"]["sha256"] == DEBIAN_SHA256
    assert upload(site(), document).status_code == 201
    assert occi_server(["sign-metadata", str(tmp_path / "missing.img"), "--key", str(key),
                        "--cert", str(cert), "--title", "x"]) == 2
    assert "missing.img" in capsys.readouterr().err
