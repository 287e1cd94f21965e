"""Accounting: every lifecycle change is recorded, and APEL cloud usage records
(v0.4) come out of the store for any period, ready for the SSM sender."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import insert

from occi_server.cli import main as occi_server
from occi_server.service.accounting import apel_message
from occi_server.store.tables import usage_events
from tests.conftest import COMPUTE, NETWORKINTERFACE, STORAGELINK
from tests.support.tenants import client_of, site_users

START = datetime(2026, 10, 1, tzinfo=UTC)
STOP = 'Category: stop; scheme="http://schemas.ogf.org/occi/infrastructure/compute/action#"; ' \
       'class="action"'
PUBLIC = "http://schemas.occi-server.org/occi/infrastructure/network#public"
IPNETWORK = "http://schemas.ogf.org/occi/infrastructure/network#ipnetwork"


SITE = {"backend": "simulated", "site_name": "TEST-SITE", "network_uplink": "lo",
        "endpoint_url": "https://occi.test:8787", "x509_vos": {"vo.example.org": "tenant-a"}}


@pytest.fixture
def app(make_app, tmp_path: Path) -> Flask:
    (tmp_path / "site.toml").write_text(
        "\n".join(f"{k} = {json.dumps(v)}" for k, v in SITE.items() if k != "x509_vos")
        + '\n[x509_vos]\n"vo.example.org" = "tenant-a"\n')
    return make_app(auth="basic", users=site_users(), floating_ip_pools={"public": "192.0.2.0/28"},
                    **SITE)


def records(data_dir: Path, capsys, start: str, end: str) -> list[dict[str, str]]:
    assert occi_server(["apel-records", "--start", start, "--end", end, "--data-dir",
                        str(data_dir), "--config", str(data_dir.parent / "site.toml")]) == 0
    text = capsys.readouterr().out
    assert text.startswith("APEL-cloud-message: v0.4\n")
    found = []
    for block in text.removeprefix("APEL-cloud-message: v0.4\n").split("%%\n")[:-1]:
        found.append(dict(line.split(": ", 1) for line in block.strip().splitlines()))
    return found


def age_events(app: Flask, seconds: float) -> None:
    """Move every recorded event back in time, as if it had happened earlier."""
    store = app.extensions["occi.store"]
    with store.engine.begin() as connection:
        for row in connection.execute(usage_events.select()).all():
            connection.execute(usage_events.update().where(usage_events.c.id == row.id)
                               .values(time=row.time - timedelta(seconds=seconds)))


def event(entity: str, when: datetime, name: str, state: str | None, **attributes) -> dict:
    return {"time": when, "entity_id": entity, "kind": COMPUTE, "tenant": "tenant-a",
            "owner": "/DC=org/CN=Alice", "event": name, "state": state,
            "details": {"attributes": attributes, "mixins": ["http://occi.test/occi/os_tpl#deb"]}}


def test_a_guests_lifetime_becomes_a_record(app: Flask, tmp_path: Path, capsys) -> None:
    """Active 2 h, suspended 1 h, active 1 h, deleted: the durations add up."""
    t0 = START + timedelta(days=3)
    sizes = {"occi.compute.cores": 2, "occi.compute.memory": 4.0, "occi.core.title": "worker"}
    with app.extensions["occi.store"].engine.begin() as connection:
        connection.execute(insert(usage_events), [
            event("vm-1", t0, "created", "waiting", **sizes),
            event("vm-1", t0 + timedelta(minutes=1), "changed", "active", **sizes),
            event("vm-1", t0 + timedelta(hours=2, minutes=1), "changed", "suspended", **sizes),
            event("vm-1", t0 + timedelta(hours=3, minutes=1), "changed", "active", **sizes),
            {**event("vm-1", t0 + timedelta(hours=4, minutes=1), "deleted", "active"),
             "details": {}}])
    data = tmp_path / "data"
    [done] = records(data, capsys, "2026-10-01", "2026-11-01")
    assert done == {
        "VMUUID": "vm-1", "SiteName": "TEST-SITE", "CloudComputeService": "https://occi.test:8787",
        "MachineName": "worker", "LocalUserId": "/DC=org/CN=Alice", "LocalGroupId": "tenant-a",
        "GlobalUserName": "/DC=org/CN=Alice", "FQAN": "vo.example.org", "Status": "completed",
        "StartTime": str(int(t0.timestamp())),
        "EndTime": str(int((t0 + timedelta(hours=4, minutes=1)).timestamp())),
        "SuspendDuration": "3600", "WallDuration": "10800", "CpuDuration": "21600",
        "CpuCount": "2", "Memory": "4096", "ImageId": "deb",
        "CloudType": "occi-server/0.1.0 (simulated)"}
    # While it still ran (the period ends 90 minutes in), it was started, 89 min active.
    [running] = records(data, capsys, "2026-10-01", (t0 + timedelta(minutes=90)).isoformat())
    assert (running["Status"], running["WallDuration"]) == ("started", str(89 * 60))
    assert "EndTime" not in running
    # A period after its deletion has no record of it; one before its creation neither.
    assert records(data, capsys, "2026-10-05", "2026-10-06") == []
    assert records(data, capsys, "2026-09-01", "2026-10-01") == []


def test_every_lifecycle_change_through_the_api_is_accounted(app: Flask, tmp_path: Path,
                                                             capsys) -> None:
    alice = client_of(app, "alice")
    compute = alice.compute('X-OCCI-Attribute: occi.core.title="analysis"')
    storage = alice.storage(3)
    alice.create(STORAGELINK, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                 f'X-OCCI-Attribute: occi.core.target="{storage}"')
    network = alice.create(
        "http://schemas.ogf.org/occi/infrastructure#network",
        'X-OCCI-Attribute: occi.network.address="10.70.0.0/24"', mixins=(IPNETWORK, PUBLIC))
    alice.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                 f'X-OCCI-Attribute: occi.core.target="{network}"')
    reservation = alice.post_text("/ipreservation/", [
        'Category: ipreservation; scheme="http://schemas.ogf.org/occi/infrastructure#"; '
        'class="kind"']).headers["Location"]
    alice.create(NETWORKINTERFACE, f'X-OCCI-Attribute: occi.core.source="{compute}"',
                 f'X-OCCI-Attribute: occi.core.target="{reservation}"')
    age_events(app, 600)  # ran for ten minutes
    assert alice.post_text(compute + "?action=stop", [STOP]).status_code == 200
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    end = (datetime.now(UTC) + timedelta(seconds=5)).isoformat()
    [record] = records(tmp_path / "data", capsys, start, end)
    assert record["VMUUID"] == compute.rpartition("/")[2]
    assert (record["MachineName"], record["LocalUserId"], record["LocalGroupId"]) == \
        ("analysis", "alice", "tenant-a")
    assert record["FQAN"] == "vo.example.org"
    assert 595 <= int(record["WallDuration"]) <= 610
    assert (record["CpuCount"], record["Memory"], record["Disk"], record["PublicIPCount"]) == \
        ("1", "1024", "3", "2")  # its interface on a public network, its reserved address
    assert alice.request("DELETE", compute).status_code == 200
    [gone] = records(tmp_path / "data", capsys, start,
                     (datetime.now(UTC) + timedelta(seconds=5)).isoformat())
    assert gone["Status"] == "completed" and "EndTime" in gone


def test_records_go_into_the_ssm_senders_queue(app: Flask, tmp_path: Path,
                                               monkeypatch) -> None:
    monkeypatch.setenv("OCCI_BACKEND", "simulated")
    client_of(app, "alice").compute()
    spool = tmp_path / "outgoing"
    assert occi_server(["apel-records", "--start", "2026-01-01", "--spool", str(spool),
                        "--data-dir", str(tmp_path / "data")]) == 0
    [bucket] = spool.iterdir()
    assert re.fullmatch(r"[0-9a-f]{8}", bucket.name)
    assert int(bucket.name, 16) % 60 == 0
    [message] = bucket.iterdir()
    assert re.fullmatch(r"[0-9a-f]{14}", message.name)  # dirq QueueSimple element
    assert message.read_text().startswith("APEL-cloud-message: v0.4\nVMUUID: ")


def test_a_period_must_make_sense(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("OCCI_BACKEND", "simulated")
    assert occi_server(["apel-records", "--start", "yesterday",
                        "--data-dir", str(tmp_path)]) == 2
    assert "not an ISO 8601 date" in capsys.readouterr().err
    assert occi_server(["apel-records", "--start", "2026-02-01", "--end", "2026-01-01",
                        "--data-dir", str(tmp_path)]) == 2


def test_the_message_format() -> None:
    assert apel_message([{"VMUUID": "a", "SiteName": "S"}, {"VMUUID": "b", "SiteName": "S"}]) \
        == "APEL-cloud-message: v0.4\nVMUUID: a\nSiteName: S\n%%\nVMUUID: b\nSiteName: S\n%%\n"


def test_a_machine_made_through_cimi_is_accounted_as_its_compute(app: Flask, tmp_path: Path,
                                                                  capsys) -> None:
    alice = client_of(app, "alice")
    made = alice.request("POST", "/cimi/machines", json={
        "name": "via cimi", "machineTemplate": {
            "machineConfig": {"cpu": 2, "memory": 2 * 1024 * 1024},
            "machineImage": {"href": "machineImage/debian-12"}}})
    assert made.status_code == 201, made.get_data(as_text=True)
    age_events(app, 300)
    stopped = alice.request("POST", "/cimi/" + made.get_json()["id"] + "/action/stop")
    assert stopped.status_code == 200
    [record] = records(tmp_path / "data", capsys, (datetime.now(UTC) - timedelta(hours=1))
                       .isoformat(), (datetime.now(UTC) + timedelta(seconds=5)).isoformat())
    assert record["VMUUID"] == made.get_json()["id"].rpartition("/")[2]
    assert (record["MachineName"], record["LocalGroupId"], record["CpuCount"],
            record["Memory"]) == ("via cimi", "tenant-a", "2", "2048")
    assert 295 <= int(record["WallDuration"]) <= 310
