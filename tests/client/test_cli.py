"""The `occi` command line against a real running server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from occi_server.client.cli import cli
from tests.integration.test_serve import Server

ISOLATED = {"OCCI_SITES": None, "OCCI_ENDPOINT": None, "OCCI_SITE": None}


@pytest.fixture
def occi(server: Server, tmp_path: Path):
    runner = CliRunner()

    def invoke(*args: str, site: bool = True) -> Result:
        prefix = ["--endpoint", server.url] if site else []
        return runner.invoke(cli, [*prefix, *args], catch_exceptions=False,
                             env={**ISOLATED, "HOME": str(tmp_path)})
    return invoke


def located(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["location"]


@pytest.mark.parametrize("media_type", ["text/plain", "text/occi", "application/occi+json"])
def test_verbs_in_every_media_type(occi, tmp_path: Path, media_type: str) -> None:
    m = ["--media-type", media_type]
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3Nza alice@laptop\n")
    data = tmp_path / "user-data"
    data.write_text("#cloud-config\n")
    network = located(occi(*m, "-o", "json", "create", "-r", "network", "-M", "ipnetwork",
                           "-A", "occi.network.address=10.44.0.0/24"))
    vm = located(occi(*m, "-o", "json", "create", "-r", "compute", "-M", "os_tpl#debian-12",
                      "-A", "occi.core.title=cli vm", "-c", f"ssh_key=@{key}",
                      "-c", f"user_data=@{data}", "-l", network))
    described = json.loads(occi(*m, "-o", "json", "describe", vm).output)[0]
    assert described["attributes"]["occi.credentials.ssh.publickey"] == \
        "ssh-ed25519 AAAAC3Nza alice@laptop"
    assert described["attributes"]["occi.compute.userdata"] == "I2Nsb3VkLWNvbmZpZwo="
    listed = occi(*m, "list", "compute", "-A", "occi.core.title=cli vm")
    assert listed.output.split() == ["LOCATION", vm]
    assert "inactive" in occi(*m, "trigger", vm, "stop", "-A", "method=poweroff").output
    assert occi(*m, "update", vm, "-A", "occi.compute.cores=3").exit_code == 0
    assert json.loads(occi(*m, "-o", "json", "describe", vm).output)[0]["attributes"][
        "occi.compute.cores"] == 3
    storage = located(occi(*m, "-o", "json", "create", "-r", "storage",
                           "-A", "occi.storage.size=1.5"))
    disk = located(occi(*m, "-o", "json", "link", vm, storage))
    assert occi(*m, "unlink", disk).exit_code == 0
    assert occi(*m, "delete", vm, storage, network).exit_code == 0
    assert occi(*m, "list", "compute").output.split() == ["LOCATION"]


def test_security_groups_from_the_command_line(occi) -> None:
    rules = '[{"type": "inbound", "protocol": "tcp", "port": "443", "range": "0.0.0.0/0"}]'
    group = located(occi("-o", "json", "create", "-r", "securitygroup",
                         "-A", "occi.core.title=https",
                         "-A", f"occi.securitygroup.rules={rules}"))
    described = json.loads(occi("-o", "json", "describe", group).output)[0]["attributes"]
    # text/plain carries a list as its JSON text (the rendering has no lists of its own)
    assert json.loads(described["occi.securitygroup.rules"]) == json.loads(rules)
    vm = located(occi("-o", "json", "create", "-r", "compute"))
    membership = located(occi("-o", "json", "link", vm, group))
    assert "/link/securitygrouplink/" in membership
    assert occi("unlink", membership).exit_code == 0
    assert occi("delete", vm, group).exit_code == 0


def test_ip_reservations_and_zones_from_the_command_line(occi) -> None:
    network = located(occi("-o", "json", "create", "-r", "network", "-M", "ipnetwork",
                           "-M", "public", "-A", "occi.network.address=10.46.0.0/24"))
    vm = located(occi("-o", "json", "create", "-r", "compute", "-l", network,
                      "-M", "availability_zone#default"))
    assert any(m.endswith("availability_zone#default") for m in json.loads(
        occi("-o", "json", "describe", vm).output)[0]["mixins"])
    address = located(occi("-o", "json", "create", "-r", "ipreservation"))
    reserved = json.loads(occi("-o", "json", "describe", address).output)[0]["attributes"]
    assert reserved["occi.ipreservation.address"].startswith("192.0.2.")
    lead = located(occi("-o", "json", "link", vm, address))
    assert "/link/networkinterface/" in lead
    assert occi("unlink", lead).exit_code == 0
    assert occi("delete", vm, address, network).exit_code == 0


def test_run_waits_and_prints_the_address(occi, tmp_path: Path) -> None:
    occi("create", "-r", "network", "-M", "ipnetwork", "-A", "occi.core.title=lab",
         "-A", "occi.network.address=10.45.0.0/24", "-A", "occi.network.gateway=10.45.0.1")
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAA bob@host\n")
    result = occi("-o", "json", "run", "alpine-3", "--flavour", "medium", "--ssh-key", str(key),
                  "--network", "lab", "--volume", "4", "--title", "runner", "--wait")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["state"] == "active" and summary["addresses"] == ["10.45.0.2"]
    described = json.loads(occi("-o", "json", "describe", summary["location"]).output)[0]
    assert described["attributes"]["occi.compute.cores"] == 2
    assert len(described["links"]) == 2


def test_run_attaches_an_existing_volume_by_its_title(occi) -> None:
    volume = located(occi("-o", "json", "create", "-r", "storage", "-A", "occi.storage.size=2",
                          "-A", "occi.core.title=results"))
    result = occi("-o", "json", "run", "alpine-3", "--volume", "results", "--wait")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    described = json.loads(occi("-o", "json", "describe", summary["location"]).output)[0]
    assert [link["target"] for link in described["links"]] == [volume[volume.index("/storage/"):]]
    missing = occi("run", "alpine-3", "--volume", "no-such-volume")
    assert missing.exit_code == 3 and "no storage titled or identified" in missing.output


def test_run_ssh_needs_an_address(occi) -> None:
    result = occi("run", "alpine-3", "--ssh", "--timeout", "30")
    assert result.exit_code == 3 and "no address to log in to" in result.output


def test_discover_filters(occi) -> None:
    kinds = occi("discover", "--kinds").output
    assert "compute" in kinds and "ssh_key" not in kinds
    templates = json.loads(occi("-o", "json", "discover", "--templates", "os_tpl").output)
    assert {t["term"] for t in templates} == {"debian-12", "alpine-3"}


@pytest.mark.parametrize(("args", "code", "message"), [
    (("describe", "/compute/none"), 3, "404 Not Found"),
    (("create", "-r", "compute", "-A", "occi.compute.cores=0"), 3, "minimum"),
    (("create", "-r", "teapot"), 3, "no kind 'teapot'"),
    (("create", "-r", "compute", "-A", "novalue"), 2, "NAME=VALUE"),
    (("trigger",), 2, "Missing argument"),
])
def test_exit_codes_and_messages(occi, args: tuple[str, ...], code: int, message: str) -> None:
    result = occi(*args)
    assert result.exit_code == code
    assert message in result.output


def test_unreachable_site_is_exit_4(occi) -> None:
    result = occi("--endpoint", "http://127.0.0.1:9", "list", "compute", site=False)
    assert result.exit_code == 4 and "cannot reach" in result.output


def test_no_site_named_explains_what_to_do(occi) -> None:
    result = occi("list", "compute", site=False)
    assert result.exit_code == 3 and "--endpoint" in result.output


def test_profiles_and_all_sites(server: Server, tmp_path: Path) -> None:
    sites = tmp_path / "sites.toml"
    sites.write_text(f'default = "plain"\n[sites.plain]\nendpoint = "{server.url}"\n'
                     f'[sites.json]\nendpoint = "{server.url}"\n'
                     'media_type = "application/occi+json"\n')
    runner = CliRunner()
    created = runner.invoke(cli, ["--sites-file", str(sites), "--site", "json", "-o", "json",
                                  "create", "-r", "storage", "-A", "occi.storage.size=1"])
    location = json.loads(created.output)["location"]
    default = runner.invoke(cli, ["--sites-file", str(sites), "list", "storage"])
    assert location in default.output
    everywhere = runner.invoke(cli, ["--sites-file", str(sites), "-o", "json", "list",
                                     "storage", "--all-sites"])
    rows = json.loads(everywhere.output)
    assert {r["site"] for r in rows if r["location"] == location} == {"plain", "json"}


def test_help_on_every_verb_and_completion() -> None:
    runner = CliRunner()
    for verb in ("discover", "list", "describe", "create", "update", "delete", "trigger",
                 "link", "unlink", "run", "completion"):
        result = runner.invoke(cli, [verb, "--help"])
        assert result.exit_code == 0 and "Usage: " in result.output, verb
    script = runner.invoke(cli, ["completion", "bash"], env=ISOLATED)
    assert script.exit_code == 0 and "_OCCI_COMPLETE" in script.output


def test_a_site_whose_certificate_is_missing_hides_no_other(server: Server,
                                                            tmp_path: Path) -> None:
    """The README's profile with a grid site whose certificate file is gone: that
    site is named on stderr with the reason, the others are listed, exit 6."""
    sites = tmp_path / "sites.toml"
    sites.write_text(f'default = "local"\n[sites.local]\nendpoint = "{server.url}"\n'
                     '[sites.cesnet]\nendpoint = "https://127.0.0.1:9"\n'
                     f'auth = "x509"\ncertificate = "{tmp_path}/x509up_u1000"\n')
    runner = CliRunner()
    created = runner.invoke(cli, ["--sites-file", str(sites), "-o", "json", "create", "-r",
                                  "storage", "-A", "occi.storage.size=1"])
    location = json.loads(created.output)["location"]
    everywhere = runner.invoke(cli, ["--sites-file", str(sites), "-o", "json", "list",
                                     "storage", "--all-sites"], catch_exceptions=False)
    assert everywhere.exit_code == 6
    assert "site cesnet: the client certificate file" in everywhere.stderr
    assert "no such file" in everywhere.stderr and "Traceback" not in everywhere.output
    assert location in everywhere.stdout
    one = runner.invoke(cli, ["--sites-file", str(sites), "--site", "cesnet", "list",
                              "storage"], catch_exceptions=False)
    assert one.exit_code == 3 and "certificate file" in one.stderr


def test_trigger_waits_until_the_action_is_done(tmp_path: Path) -> None:
    """A site that answers before its action is done (each step takes 1.5 s, the
    requests wait 0.1 s): trigger shows the outcome, --no-wait the job under way."""
    slow = Server(tmp_path / "data")
    slow.start(workers=1, simulated_delay_seconds="1.5", job_wait_seconds="0.1")
    try:
        runner = CliRunner()

        def occi(*args: str) -> Result:
            return runner.invoke(cli, ["--endpoint", slow.url, "-o", "json", *args],
                                 catch_exceptions=False, env=ISOLATED)

        booted = occi("run", "debian-12", "--wait", "--timeout", "30")
        assert booted.exit_code == 0, booted.output
        compute = json.loads(booted.stdout)["location"]
        stopped = occi("trigger", compute, "stop", "-A", "method=acpioff")
        assert stopped.exit_code == 0, stopped.output
        assert json.loads(stopped.stdout)["attributes"]["occi.compute.state"] == "inactive"
        started = occi("trigger", compute, "start", "--no-wait")
        assert json.loads(started.stdout)["attributes"]["occi.compute.state"] == "waiting"
    finally:
        slow.stop()
