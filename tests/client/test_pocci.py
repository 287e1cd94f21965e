"""pOCCI 1.0.3, CESNET's OCCI compliance tool, run as it is against a live
server (simulated backend, HTTP basic), in text/plain and text/occi.

Each of its tests runs on its own against a site holding one compute, one
storage and one network, as pOCCI expects of the site it checks (its read,
update and action tests look for an existing entity; its storagelink test and
its compute-with-links test each attach the first listed volume, so run in one
go on a site whose volumes attach to one guest at a time the second would find
it taken).

One test sends what the specification forbids and is refused as it says:
OCCI/CORE/CREATE/001 creates a compute with occi.compute.architecture "arch",
which is not one of the attribute's values (x86, x64): 400."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from werkzeug.security import generate_password_hash

from tests.integration.test_serve import Server
from tests.support.pocci import prepared

HOME = prepared()
pytestmark = pytest.mark.skipif(HOME is None, reason="pOCCI is not prepared (scripts/setup.sh "
                                                     "--test runs python -m tests.support.pocci)")
USER, PASSWORD = "tester", "pocci-pw"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
# Refused because the specification forbids what they send (see above).
REFUSED = {"OCCI/CORE/CREATE/001": "400 Bad Request"}


def pocci(*args: str) -> str:
    assert HOME is not None
    return subprocess.run([sys.executable, "-m", "pOCCI.pOCCI", *args], cwd=HOME,
                          capture_output=True, text=True, timeout=120).stdout


TESTS = pocci("--list").split() if HOME is not None else []


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Server]:
    server = Server(Path(tmp_path_factory.mktemp("pocci")) / "data")
    users = {USER: generate_password_hash(PASSWORD, method="pbkdf2:sha256:1000")}
    server.start(workers=1, auth="basic", users=json.dumps(users), reconcile_seconds="0")
    yield server
    server.stop()


def populate(server: Server) -> None:
    """Nothing but one compute, one storage and one network (and no user mixin)."""
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    for collection in ("/link/", "/compute/", "/storage/", "/network/"):
        assert session.delete(server.url + collection, timeout=30).status_code == 200
    session.delete(server.url + "/-/", timeout=30, headers={"Content-Type": "text/plain"},
                   data='Category: stufik; scheme="http://example.com/occi/my_stuff#"; '
                        'class="mixin"\n')
    for kind, extra in (("compute", ""), ("storage", "X-OCCI-Attribute: occi.storage.size=1\n"),
                        ("network", "")):
        created = session.post(f"{server.url}/{kind}/", timeout=30,
                               headers={"Content-Type": "text/plain"},
                               data=f'Category: {kind}; scheme="{INFRA}"; class="kind"\n{extra}')
        assert created.status_code == 201, created.text


def test_pocci_lists_its_tests() -> None:
    assert len(TESTS) == 17 and "OCCI/CORE/DISCOVERY/001" in TESTS


@pytest.mark.parametrize("media_type", ["text/plain", "text/occi"])
def test_every_pocci_test_passes(site: Server, media_type: str) -> None:
    outcomes = {}
    for name in TESTS:
        populate(site)
        output = pocci("-e", site.url, "-u", USER, "-p", PASSWORD, "-m", media_type,
                       "-f", "json", "-t", name)
        report = json.loads(output[output.index("{"):])  # after what its tests print
        [result] = report["tests"]
        outcomes[name] = (result["status"], result.get("reason", []))
    assert len(outcomes) == 17
    failed = {name: outcome for name, outcome in outcomes.items()
              if outcome[0] != "OK" and name not in REFUSED}
    assert failed == {}
    for name, status in REFUSED.items():
        assert outcomes[name][0] == "FAIL"
        assert any(status in reason for reason in outcomes[name][1]), outcomes[name]
