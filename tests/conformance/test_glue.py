"""The GLUE 2.1 description of the endpoint, as EGI's cloud-info-provider
publishes it: served as JSON and printed by a sub-command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask import Flask

from occi_server import SERVER_HEADER
from occi_server.cli import main as occi_server
from occi_server.kinds.tenancy import BUILTIN_LIMITS
from tests.support.tenants import client_of, site_users

CLASSES = {"CloudComputingService", "CloudComputingManager", "CloudComputingEndpoint",
           "CloudComputingImage", "CloudComputingInstanceType", "Share", "MappingPolicy",
           "AccessPolicy"}


@pytest.fixture
def app(make_app) -> Flask:
    return make_app(auth="basic", users=site_users(), site_name="TEST-SITE",
                    endpoint_url="https://occi.test:8787/",
                    x509_vos={"vo.example.org": "tenant-a"},
                    quotas={"default": {"instances": 4}, "tenant-b": {"cores": 8}})


def test_the_endpoint_describes_itself(app: Flask) -> None:
    client_of(app, "alice").compute()
    client_of(app, "bob").compute()
    glue = client_of(app, "root").get("/glue").get_json()
    assert set(glue) == CLASSES
    [endpoint] = glue["CloudComputingEndpoint"]
    assert endpoint["InterfaceName"] == "org.ogf.occi"
    assert f"OCCI/{endpoint['InterfaceVersion']}" in SERVER_HEADER.split()
    assert endpoint["InterfaceVersion"] == "1.2"
    assert endpoint["URL"] == "https://occi.test:8787"
    assert endpoint["Authentication"] == "basic"
    [service] = glue["CloudComputingService"]
    assert service["Associations"] == {"AdminDomain": ["TEST-SITE"]}
    assert (service["TotalVM"], service["RunningVM"]) == (2, 2)
    shares = {share["ProjectID"]: share for share in glue["Share"]}
    assert {"tenant-a", "tenant-b", "ops"} <= set(shares)
    # The configured limits over the built-in ones every tenant has.
    assert shares["tenant-b"]["OtherInfo"]["quotas"] == {**BUILTIN_LIMITS, "instances": 4,
                                                         "cores": 8}
    assert shares["tenant-a"]["MaxVM"] == 4 and shares["tenant-a"]["TotalVM"] == 1
    policies = {p["Associations"]["Share"][0]: p["Rule"] for p in glue["MappingPolicy"]}
    assert policies[shares["tenant-a"]["ID"]] == ["VO:vo.example.org"]
    types = {t["Name"]: t for t in glue["CloudComputingInstanceType"]}
    assert (types["medium"]["CPU"], types["medium"]["RAM"], types["medium"]["Disk"]) == \
        (2, 2048, 20)
    images = {i["Name"]: i for i in glue["CloudComputingImage"]}
    assert images["Debian 12 (simulated image)"]["OSName"] == "linux"
    manager = glue["CloudComputingManager"][0]
    assert (manager["InstanceMaxCPU"], manager["InstanceMaxRAM"]) == (4, 16384)  # mem_large
    for entities in glue.values():
        for entity in entities:
            assert entity["Validity"] == 3600 and entity["CreationTime"]


def test_tenants_see_their_own_share(app: Flask) -> None:
    glue = client_of(app, "alice").get("/glue").get_json()
    assert [share["ProjectID"] for share in glue["Share"]] == ["tenant-a"]


def test_the_sub_command_prints_the_same_document(app: Flask, tmp_path: Path, capsys,
                                                  monkeypatch) -> None:
    monkeypatch.setenv("OCCI_BACKEND", "simulated")
    assert occi_server(["glue-info", "--data-dir", str(tmp_path / "data")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == CLASSES
    assert printed["CloudComputingEndpoint"][0]["InterfaceVersion"] == "1.2"
