"""IM 1.19.1's OCCI connector (GRyCAP's Infrastructure Manager), driven
through IM's own classes (tests/support/im_driver.py, in IM's own virtual
environment) against a live server (simulated backend), as an EGI user's
infrastructure would be: an OIDC access token (IM's bearer path; its basic
path calls base64.encodestring, which Python 3.9 removed), a VM launched with
a new volume, user data and a public key, its state read, stopped, started and
rebooted, a disk added, a public address added and removed, a VM launched
with an instance type, and both finalized with nothing of them left."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.integration.test_serve import Server
from tests.support.im import DRIVER, prepared

PYTHON = prepared()
pytestmark = pytest.mark.skipif(PYTHON is None, reason="IM is not prepared (scripts/setup.sh "
                                                       "--test runs python -m tests.support.im)")
ISSUER, AUDIENCE = "https://aai.example.org/auth/realms/egi", "occi-im-test"
GROUP = "urn:mace:egi.eu:group:vo.im.example:role=member#aai.example.org"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Server, str]]:
    directory = Path(tmp_path_factory.mktemp("im"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps({"keys": [{**json.loads(RSAAlgorithm.to_jwk(key.public_key())),
                                          "kid": "k1", "use": "sig", "alg": "RS256"}]}))
    server = Server(directory / "data")
    server.start(workers=1, auth="oidc", oidc_issuer=ISSUER, oidc_audience=AUDIENCE,
                 oidc_jwks=str(jwks), oidc_tenants=json.dumps({GROUP: "vo-im"}),
                 reconcile_seconds="0",
                 # A site with a floating IP pool: IM's public address still works.
                 floating_ip_pools=json.dumps({"public": "192.0.2.128/28"}))
    now = int(time.time())
    token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "im-user@example.org",
                        "iat": now, "exp": now + 3600, "eduperson_entitlement": [GROUP]},
                       key, algorithm="RS256", headers={"kid": "k1"})
    yield server, token
    server.stop()


def listed(server: Server, token: str, collection: str) -> list[str]:
    response = requests.get(server.url + collection, timeout=30, headers={
        "Authorization": f"Bearer {token}", "Accept": "text/uri-list"})
    assert response.status_code == 200, response.text
    return response.text.split()


def test_im_drives_a_whole_infrastructure(site: tuple[Server, str]) -> None:
    server, token = site
    for name, cidr in (("private", "10.40.0.0/24"), ("public", "203.0.113.0/24")):
        created = requests.post(server.url + "/network/", timeout=30, headers={
            "Authorization": f"Bearer {token}", "Content-Type": "text/plain"}, data=(
            f'Category: network; scheme="{INFRA}"; class="kind"\n'
            'Category: ipnetwork; scheme="http://schemas.ogf.org/occi/infrastructure/network#";'
            ' class="mixin"\n'
            f'X-OCCI-Attribute: occi.core.title="{name}"\n'
            f'X-OCCI-Attribute: occi.network.address="{cidr}"\n'))
        assert created.status_code == 201, created.text
    assert PYTHON is not None
    run = subprocess.run([str(PYTHON), str(DRIVER), server.url, token], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    steps = json.loads(run.stdout.strip().splitlines()[-1])
    failed = {name: outcome["said"] for name, outcome in steps.items() if not outcome["ok"]}
    assert failed == {}, run.stderr[-3000:]
    assert len(steps) == 18
    for collection in ("/compute/", "/storage/", "/link/"):
        assert listed(server, token, collection) == [], collection  # finalize left nothing
