"""The `occi` command on a site with users, tenants and quotas."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from occi_server.client.cli import cli
from tests.integration.test_serve import Server
from tests.support.tenants import PASSWORDS, site_users

ISOLATED = {"OCCI_SITES": None, "OCCI_ENDPOINT": None, "OCCI_SITE": None, "OCCI_TENANT": None}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    users = site_users()
    users["alice"]["tenants"] = ["tenant-a", "tenant-c"]
    running = Server(Path(tmp_path_factory.mktemp("tenants")) / "data")
    running.start(workers=1, auth="basic", users=json.dumps(users),
                  quotas=json.dumps({"default": {"instances": 1}}))
    yield running
    running.stop()


def occi(server: Server, user: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--endpoint", server.url, "--user", user, "--password",
                                    PASSWORDS[user], "-o", "json", *args],
                              catch_exceptions=False, env=ISOLATED)


def test_the_client_acts_for_a_chosen_tenant_and_reads_its_quotas(server: Server) -> None:
    created = occi(server, "alice", "create", "-r", "compute")
    assert created.exit_code == 0, created.output
    in_a = json.loads(created.output)["location"]
    refused = occi(server, "alice", "create", "-r", "compute")
    assert refused.exit_code != 0
    assert "quota instances of tenant tenant-a exceeded" in refused.output
    in_c = occi(server, "alice", "--tenant", "tenant-c", "create", "-r", "compute")
    assert in_c.exit_code == 0, in_c.output
    listed = occi(server, "alice", "--tenant", "tenant-c", "list", "compute")
    assert in_a not in listed.output
    assert json.loads(in_c.output)["location"] in listed.output
    quotas = occi(server, "alice", "list", "quota")
    assert json.loads(quotas.output) == [f"{server.url}/quota/tenant-a"]
    [described] = json.loads(occi(server, "alice", "describe", "/quota/tenant-a").output)
    assert described["attributes"]["occi_server.quota.instances.usage"] == 1
    assert occi(server, "bob", "describe", in_a).exit_code != 0
