"""Identity and tenancy through the real server: quotas hold under concurrent
requests to several workers (SQLite and PostgreSQL), rate limits are shared by
the workers, and TLS client certificates end at the service itself."""

from __future__ import annotations

import functools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from occi_server.cli import main as occi_server
from tests.integration.test_serve import KIND, Server, serving
from tests.support.pki import issue
from tests.support.tenants import basic, site_users


def users_setting() -> str:
    return json.dumps(site_users())


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_concurrent_creates_never_pass_a_quota(tmp_path: Path, database: str) -> None:
    with serving(tmp_path / "data", database, auth="basic", users=users_setting(),
                 quotas=json.dumps({"default": {"instances": 5}})) as server:

        def create(index: int) -> int:
            return requests.post(
                server.url + "/compute/", timeout=60,
                data=f'{KIND}\nX-OCCI-Attribute: occi.core.title="racer {index}"\n',
                headers={"Content-Type": "text/plain",
                         "Authorization": basic("alice")}).status_code

        with ThreadPoolExecutor(max_workers=20) as pool:
            statuses = list(pool.map(create, range(20)))
        assert sorted(statuses) == [201] * 5 + [403] * 15
        listed = requests.get(server.url + "/compute/", timeout=30, headers={
            "Authorization": basic("alice"), "Accept": "text/uri-list"}).text.split()
        assert len(listed) == 5
        usage = requests.get(server.url + "/api/quota", timeout=30,
                             headers={"Authorization": basic("alice")}).json()
        assert usage["quotas"]["instances"] == {"limit": 5, "usage": 5,
                                                "counts": "compute resources"}


def _fresh_window() -> None:
    """Start in the first part of a minute, so the test's requests share one window."""
    if time.time() % 60 > 45:
        time.sleep(61 - time.time() % 60)


def test_rate_limits_are_shared_by_every_worker(tmp_path: Path) -> None:
    server = Server(tmp_path / "data")
    server.start(auth="basic", users=users_setting(), rate_limit_anonymous="6/minute",
                 rate_limit_authenticated="15/minute")
    try:
        _fresh_window()
        with ThreadPoolExecutor(max_workers=6) as pool:
            anonymous = list(pool.map(lambda _: requests.get(server.url + "/-/", timeout=30),
                                      range(10)))
            alice = list(pool.map(lambda _: requests.get(
                server.url + "/compute/", timeout=30,
                headers={"Authorization": basic("alice")}), range(20)))
        # 6 of the 10 anonymous requests were answered (401: no credentials); the
        # start-up probe of the test harness took one more.
        assert sorted(r.status_code for r in anonymous).count(429) >= 4
        assert sorted(r.status_code for r in alice) == [200] * 15 + [429] * 5
        refused = next(r for r in alice if r.status_code == 429)
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "at most 15 per 60 s" in refused.text
        bob = requests.get(server.url + "/compute/", timeout=30,
                           headers={"Authorization": basic("bob")})
        assert bob.status_code == 200  # each user has a budget of its own
    finally:
        server.stop()


def test_client_certificates_end_at_the_service(tmp_path: Path) -> None:
    pki = tmp_path / "pki"
    pki.mkdir()
    ca = issue("Test Grid CA", ca=True)
    _, ca_cert = ca.write(pki, "ca")
    server_key, server_cert = issue("127.0.0.1", ca, tls="server").write(pki, "server")
    client_key, client_cert = issue("Alice Grid", ca, tls="client").write(pki, "alice")
    stranger_ca = issue("Another CA", ca=True)
    stranger_key, stranger_cert = issue("Mallory", stranger_ca, tls="client").write(
        pki, "mallory")
    server = Server(tmp_path / "data")
    server.url = server.url.replace("http://", "https://")
    server.verify = str(ca_cert)
    settings = {"auth": "basic,x509", "users": users_setting(), "tls_cert": str(server_cert),
                "tls_key": str(server_key), "tls_client_ca": str(ca_cert),
                "admins": json.dumps(["/O=occi-server tests/CN=Alice Grid"])}
    assert occi_server(["user", "add", "alice-grid", "--tenant", "tenant-a", "--no-password",
                        "--dn", "CN=Alice Grid,O=occi-server tests",
                        "--data-dir", str(server.data_dir)]) == 0
    server.start(workers=2, **settings)
    try:
        whoami = functools.partial(requests.get, server.url + "/api/whoami", timeout=30,
                                   verify=str(ca_cert))
        found = whoami(cert=(str(client_cert), str(client_key))).json()
        assert (found["name"], found["tenant"]) == ("alice-grid", "tenant-a")
        assert found["method"] == "x509" and found["operator"] is True  # by its DN
        # No certificate: other credentials still work, none is a 401.
        assert whoami().status_code == 401
        assert whoami(headers={"Authorization": basic("bob")}).json()["name"] == "bob"
        # A certificate from a CA the site does not trust ends the handshake.
        with pytest.raises(requests.exceptions.SSLError):
            whoami(cert=(str(stranger_cert), str(stranger_key)))
    finally:
        server.stop()
