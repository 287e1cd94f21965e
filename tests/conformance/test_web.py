"""The site's web pages (marketplace and self-service) as a browser meets them:
signing in, forms protected against forgery, what each page shows, and that
what a page does is what OCCI sees. The same pages in a real Chromium:
tests/integration/test_web_pages.py."""

from __future__ import annotations

import json
import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.security import generate_password_hash
from werkzeug.test import TestResponse

from occi_server.marketplace.entries import checksums_of, new_metadata
from occi_server.marketplace.signing import sign
from tests.conftest import AppFactory, Client
from tests.support.pki import crl, issue

USERS = {"alice": {"password_hash": generate_password_hash("alice-pw"), "tenants": ["physics"]},
         "bob": {"password_hash": generate_password_hash("bob-pw"), "tenants": ["biology"]},
         "carol": {"password_hash": generate_password_hash("carol-pw"),
                   "tenants": ["physics", "biology"]}}


class Browser:
    """A cookie-keeping client that fills in forms as the pages give them."""

    def __init__(self, app: Flask) -> None:
        self.client = app.test_client()

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def csrf(self) -> str:
        cookie = self.client.get_cookie("occi_csrf")
        if cookie is None:
            self.client.get("/my/sign-in")
            cookie = self.client.get_cookie("occi_csrf")
        assert cookie is not None
        return cookie.value

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> TestResponse:
        return self.client.post(path, data={"csrf": self.csrf(), **(data or {})}, **kwargs)

    def sign_in(self, user: str, password: str) -> TestResponse:
        return self.post("/my/sign-in", {"user": user, "password": password, "next": "/my/"})


def text(response: TestResponse) -> str:
    """The page as a reader sees it: no tags, entities decoded, spaces folded."""
    page = re.sub(r"<(style|script)>.*?</\1>", " ", response.get_data(True), flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", page)))


def options(response: TestResponse, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', response.get_data(True), re.S)
    assert select is not None, f"no {name} list on the page"
    return [v for v in re.findall(r'<option value="([^"]*)"', select.group(0)) if v]


@pytest.fixture
def site(make_app: AppFactory) -> Flask:
    return make_app(auth="basic", users=USERS, quotas={"physics": {"instances": 3}})


@pytest.fixture
def alice(site: Flask) -> Browser:
    browser = Browser(site)
    assert browser.sign_in("alice", "alice-pw").status_code == 303
    return browser


def start_machine(browser: Browser, title: str, **fields: str) -> str:
    form = browser.get("/my/new")
    response = browser.post("/my/compute", {
        "title": title, "image": options(form, "image")[0],
        "flavour": options(form, "flavour")[0], **fields})
    assert response.status_code == 303, text(response)
    return response.headers["Location"]


# ---------------------------------------------------------------- signing in
def test_pages_send_a_stranger_to_sign_in_and_back(site: Flask) -> None:
    browser = Browser(site)
    for page in ("/my/", "/my/new", "/marketplace/", "/marketplace/upload"):
        response = browser.get(page)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/my/sign-in?next=")
    page = browser.get("/my/sign-in?next=/marketplace/")
    assert page.status_code == 200 and 'id="password"' in page.get_data(True)
    assert "WWW-Authenticate" not in page.headers  # no browser password prompt
    response = browser.post("/my/sign-in", {"user": "alice", "password": "alice-pw",
                                            "next": "/marketplace/"})
    assert (response.status_code, response.headers["Location"]) == (303, "/marketplace/")
    session = browser.client.get_cookie("occi_session")
    assert session is not None and session.http_only and session.same_site == "Strict"
    page = browser.get("/my/")
    assert page.status_code == 200
    assert "alice" in text(page) and "tenant physics" in text(page)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_a_wrong_password_is_refused_in_words_and_opens_nothing(site: Flask) -> None:
    browser = Browser(site)
    response = browser.sign_in("alice", "guess")
    assert response.status_code == 401
    assert "wrong user name or password" in text(response)
    assert browser.client.get_cookie("occi_session") is None
    assert browser.get("/my/").status_code == 302


def test_a_session_ends_with_a_changed_password_and_at_sign_out(make_app: AppFactory,
                                                                tmp_path: Path) -> None:
    first = make_app(auth="basic", users=USERS)
    browser = Browser(first)
    browser.sign_in("alice", "alice-pw")
    cookie = browser.client.get_cookie("occi_session")
    assert cookie is not None and browser.get("/my/").status_code == 200
    changed = {**USERS, "alice": {**USERS["alice"],
                                  "password_hash": generate_password_hash("new-pw")}}
    second = Browser(make_app(auth="basic", users=changed))  # same data directory, same key
    second.client.set_cookie("occi_session", cookie.value)
    assert second.get("/my/").status_code == 302
    third = Browser(make_app(auth="basic", users=USERS))
    third.client.set_cookie("occi_session", cookie.value)
    assert third.get("/my/").status_code == 200  # the session itself held
    assert third.post("/my/sign-out").status_code == 303
    assert third.client.get_cookie("occi_session") is None
    assert third.get("/my/").status_code == 302


def test_front_ends_sharing_a_store_accept_each_others_sessions(make_app: AppFactory,
                                                                 tmp_path: Path) -> None:
    shared = f"sqlite:///{tmp_path / 'site.sqlite3'}"
    one, two = (Browser(make_app(auth="basic", users=USERS, database_url=shared,
                                 data_dir=str(tmp_path / name))) for name in ("one", "two"))
    one.sign_in("alice", "alice-pw")
    cookie = one.client.get_cookie("occi_session")
    assert cookie is not None
    two.client.set_cookie("occi_session", cookie.value)
    assert two.get("/my/").status_code == 200
    assert not (tmp_path / "one" / "web-session.key").exists()  # the key is the store's


def test_a_forged_session_and_the_api_with_a_session_are_refused(site: Flask,
                                                                 alice: Browser) -> None:
    cookie = alice.client.get_cookie("occi_session")
    assert cookie is not None
    body, _, signature = cookie.value.partition(".")
    forged = Browser(site)
    forged.client.set_cookie("occi_session", body.replace("a", "b", 1) + "." + signature)
    assert forged.get("/my/").status_code == 302
    # OCCI takes credentials only: a cookie a browser sends by itself opens no API.
    assert alice.get("/compute/", headers={"Accept": "text/plain"}).status_code == 401


def test_forms_from_elsewhere_change_nothing(site: Flask, alice: Browser) -> None:
    missing = alice.client.post("/my/storage", data={"size": "1"})
    assert missing.status_code == 403 and "load the page again" in text(missing)
    wrong = alice.client.post("/my/storage", data={"size": "1", "csrf": "x" * 32})
    assert wrong.status_code == 403
    cross = alice.post("/my/storage", {"size": "1"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    other = alice.post("/my/storage", {"size": "1"}, headers={"Origin": "http://evil.example"})
    assert other.status_code == 403
    assert "No volumes yet" in text(alice.get("/my/"))
    assert alice.post("/my/storage", {"size": "1", "title": "mine"}).status_code == 303
    assert "mine" in text(alice.get("/my/"))


# ---------------------------------------------------------------- self-service
def test_a_machine_started_on_the_page_is_the_one_occi_shows(site: Flask,
                                                            alice: Browser) -> None:
    overview = alice.get("/my/")
    assert alice.post("/my/network", {"title": "lab", "address": "10.44.0.0/24"}
                      ).status_code == 303
    network = options(alice.get("/my/new"), "network")[0]
    page = start_machine(alice, "analysis <script>alert(1)</script>", network=network,
                         ssh_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKx4 me@laptop",
                         user_data="#cloud-config\nruncmd: [touch /made]\n")
    entity_id = page.rpartition("/")[2]
    shown = alice.get(page)
    assert "<script>alert(1)</script>" not in shown.get_data(True)  # escaped, not run
    assert "analysis <script>alert(1)</script>" in text(shown)
    address = re.search(r"Addresses ([0-9.]+)", text(shown))
    assert address and address.group(1).startswith("10.44.0.")
    assert f"ssh {address.group(1)}" in text(shown)
    operator = Client(site)  # OCCI, as the same user
    headers = {"Authorization": "Basic YWxpY2U6YWxpY2UtcHc="}
    rendering = operator.get(f"/compute/{entity_id}", accept="application/occi+json",
                             headers=headers).get_json()
    assert rendering["attributes"]["occi.compute.state"] == "active"
    assert rendering["attributes"]["occi.credentials.ssh.publickey"].startswith("ssh-ed25519")
    assert rendering["attributes"]["occi.core.title"] == "analysis <script>alert(1)</script>"
    alice.post("/my/act", {"location": f"/compute/{entity_id}", "action": "stop"})
    assert operator.get(f"/compute/{entity_id}", accept="application/occi+json",
                        headers=headers).get_json()["attributes"]["occi.compute.state"] \
        == "inactive"
    assert "inactive" in text(alice.get(page))
    assert "Start" in text(alice.get(page)) and "Stop" not in text(alice.get(page))
    assert overview.status_code == 200


def test_volumes_are_created_attached_snapshotted_and_detached(alice: Browser) -> None:
    page = start_machine(alice, "worker")
    alice.post("/my/storage", {"title": "data", "size": "2"})
    volume = options(alice.get(page), "volume")[0]
    assert alice.post("/my/attach", {"compute": page.replace("/my", ""), "volume": volume,
                                     "back": page}).status_code == 303
    shown = alice.get(page)
    assert "data" in text(shown) and "No volume attached" not in text(shown)
    assert "worker" in text(alice.get("/my/"))  # the volume says whom it is attached to
    alice.post("/my/act", {"location": volume, "action": "snapshot", "name": "data copy"})
    assert "data copy" in text(alice.get("/my/"))
    link = re.search(r'name="location" value="(/link/storagelink/[^"]+)"', shown.get_data(True))
    assert link is not None
    assert alice.post("/my/delete", {"location": link.group(1), "back": page}
                      ).status_code == 303
    assert "No volume attached" in text(alice.get(page))


def test_the_overview_shows_quota_usage_and_jobs(alice: Browser) -> None:
    start_machine(alice, "one")
    overview = text(alice.get("/my/"))
    assert "instances (compute resources) 1 3" in overview
    assert re.search(r"creating /compute/\S+ done finished", overview), overview


def test_refusals_are_pages_that_say_why_and_change_nothing(alice: Browser) -> None:
    for n in range(3):
        start_machine(alice, f"m{n}")
    form = alice.get("/my/new")
    over = alice.post("/my/compute", {"image": options(form, "image")[0],
                                      "flavour": options(form, "flavour")[0]})
    assert over.status_code == 403 and "quota instances of tenant physics exceeded" in text(over)
    bad = alice.post("/my/storage", {"size": "lots"})
    assert bad.status_code == 400 and "occi.storage.size" in text(bad)
    wrong = alice.post("/my/act", {"location": "/compute/nothing", "action": "stop"})
    assert wrong.status_code == 404
    lost = alice.get("/my/nowhere/<b>")
    assert lost.status_code == 404 and lost.headers["Content-Type"].startswith("text/html")
    assert "there is no page /my/nowhere/<b>" in text(lost)
    assert alice.get("/marketplace/?limit=7").status_code == 400
    assert alice.get("/marketplace/?sort=size").status_code == 400
    assert len(re.findall(r'data-location="/compute/', alice.get("/my/").get_data(True))) == 3


def test_a_tenant_sees_and_touches_only_its_own(site: Flask, alice: Browser) -> None:
    page = start_machine(alice, "alice's")
    bob = Browser(site)
    bob.sign_in("bob", "bob-pw")
    assert "alice's" not in text(bob.get("/my/"))
    assert bob.get(page).status_code == 404
    location = page.replace("/my", "")
    assert bob.post("/my/delete", {"location": location}).status_code == 404
    assert bob.post("/my/act", {"location": location, "action": "stop"}).status_code == 404
    assert bob.post("/my/tenant", {"tenant": "physics"}).status_code == 403
    assert "active" in text(alice.get(page))
    carol = Browser(site)
    carol.sign_in("carol", "carol-pw")
    assert "alice's" in text(carol.get("/my/"))  # physics, her first tenant
    carol.post("/my/tenant", {"tenant": "biology", "back": "/my/"})
    assert "alice's" not in text(carol.get("/my/")) and "tenant biology" in text(
        carol.get("/my/"))


# ---------------------------------------------------------------- marketplace
@pytest.fixture
def market(make_app: AppFactory, tmp_path: Path) -> tuple[Flask, Any, Any, Path, dict]:
    ca = issue("Site CA", ca=True, days=365)
    jane = issue("Jane Tester", ca)
    (tmp_path / "ca").mkdir()
    (tmp_path / "ca" / "ca.pem").write_bytes(ca.cert_pem)
    image = tmp_path / "image.img"
    image.write_bytes(b"an image" * 1000)
    metadata = new_metadata(image, title="Analysis image", valid_days=30, os="linux",
                            description="<b>Numpy</b> and friends. " * 20,
                            endorser_name="Jane Tester", endorser_email="jane@example.org")
    app = make_app(marketplace_ca_dir=str(tmp_path / "ca"), simulated_images=[
        {"term": "analysis", "title": "Analysis image",
         "sha256": checksums_of(image)["sha256"], "login_user": "debian"}])
    return app, ca, jane, tmp_path / "upload.json", metadata


def test_upload_page_says_its_verdict_and_the_entry_shows_everywhere(market) -> None:
    app, ca, jane, path, metadata = market
    browser = Browser(app)
    refused = browser.post("/marketplace/upload", {"document": "{not json"})
    assert refused.status_code == 400 and "Refused: this is not a signed entry in JSON" in text(
        refused)
    tampered = sign(metadata, jane.key_pem, [jane.cert_pem])
    tampered["metadata"]["title"] = "Changed"
    refused = browser.post("/marketplace/upload", {"document": json.dumps(tampered)})
    assert "Refused: the signature does not match the metadata" in text(refused)
    signed = json.dumps(sign(metadata, jane.key_pem, [jane.cert_pem]))
    path.write_text(signed)
    with path.open("rb") as upload:
        accepted = browser.post("/marketplace/upload", {"file": (upload, "entry.json")},
                                content_type="multipart/form-data")
    assert accepted.status_code == 200
    assert "Accepted: Analysis image" in text(accepted)
    assert "Jane Tester <jane@example.org>" in text(accepted)
    again = browser.post("/marketplace/upload", {"document": signed})
    assert "as new or newer, so it stays" in text(again)

    listing = browser.get("/marketplace/")
    assert "Jane Tester <jane@example.org>" in text(listing)
    assert 'title="CN=Jane Tester,O=occi-server tests"' in listing.get_data(True)
    assert "<b>Numpy</b> and friends." in text(listing)  # the start of it, as text
    assert "<b>Numpy" not in listing.get_data(True)
    assert "\u2026" in text(listing)

    identifier = re.search(r'/marketplace/images/(m[a-z0-9]+)', listing.get_data(True))
    assert identifier is not None
    details = text(browser.get(f"/marketplace/images/{identifier.group(1)}"))
    assert "Published as http://" in details and "os_tpl#analysis" in details
    assert "SHA256" in details and "SHA512" in details and "valid" in details
    page = f"/marketplace/images/{identifier.group(1)}"
    assert 'id="deprecate"' in browser.get(page).get_data(True)  # the operator's button
    assert browser.post(f"{page}/deprecate").status_code == 303
    deprecated = browser.get(page)
    assert "Status deprecated" in text(deprecated)
    assert 'id="deprecate"' not in deprecated.get_data(True)

    (path.parent / "ca" / "revoked.crl").write_bytes(crl(ca, [jane]))
    endorsers = text(browser.get("/marketplace/endorsers"))
    assert "Jane Tester jane@example.org 1 revoked" in endorsers


def test_the_image_a_page_published_starts_with_its_ssh_line(market) -> None:
    app, _, jane, _, metadata = market
    browser = Browser(app)
    browser.post("/marketplace/upload", {"document": json.dumps(
        sign(metadata, jane.key_pem, [jane.cert_pem]))})
    browser.post("/my/network", {"title": "lab", "address": "10.45.0.0/24"})
    form = browser.get("/my/new")
    assert "Analysis image \u2014 endorsed by CN=Jane Tester" in text(form)
    [image] = [v for v in options(form, "image") if v.endswith("#analysis")]
    page = start_machine(browser, "from the marketplace", image=image,
                         network=options(form, "network")[0])
    shown = text(browser.get(page))
    assert "Image Analysis image" in shown
    assert re.search(r"ssh debian@10\.45\.0\.\d+", shown), shown


def test_an_upload_too_large_is_a_page_that_says_so(make_app: AppFactory) -> None:
    browser = Browser(make_app(max_body_bytes=4096))
    too_large = browser.post("/marketplace/upload", {"document": "x" * 10000})
    assert too_large.status_code == 413
    assert "larger than 4096 bytes" in text(too_large)
    assert too_large.headers["Content-Type"].startswith("text/html")


def test_the_overview_refreshes_itself_while_something_is_under_way(make_app: AppFactory
                                                                     ) -> None:
    # Longer than the 2 s a page waits for what it asked.
    browser = Browser(make_app(simulated_delay_seconds=3.5))
    assert 'http-equiv="refresh"' not in browser.get("/my/").get_data(True)
    start_machine(browser, "slow")
    busy = browser.get("/my/")
    assert "waiting" in text(busy) and 'http-equiv="refresh"' in busy.get_data(True)
    deadline = time.monotonic() + 10
    while 'http-equiv="refresh"' in browser.get("/my/").get_data(True):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert "active" in text(browser.get("/my/"))
