"""Accounting: APEL cloud usage records (format v0.4) built from the store's
usage events, for the APEL SSM sender."""

from __future__ import annotations

import os
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from occi_server.kinds.infrastructure import (
    COMPUTE,
    IPRESERVATION,
    NETWORK,
    NETWORKINTERFACE,
    OS_TPL,
    PUBLIC_NETWORK,
    STORAGE,
    STORAGELINK,
)
from occi_server.store import Repository

HEADER = "APEL-cloud-message: v0.4"
# The order cASO writes fields in; absent (null) values are left out.
FIELDS = ("VMUUID", "SiteName", "CloudComputeService", "MachineName", "LocalUserId",
          "LocalGroupId", "GlobalUserName", "FQAN", "Status", "StartTime", "EndTime",
          "SuspendDuration", "WallDuration", "CpuDuration", "CpuCount", "NetworkType",
          "PublicIPCount", "Memory", "Disk", "ImageId", "CloudType")


@dataclass(frozen=True)
class Site:
    name: str  # the GOCDB site name
    service: str  # the cloud compute service's name in the site (its endpoint)
    cloud_type: str  # e.g. occi-server/0.1.0 (libvirt)
    vos: dict[str, str]  # tenant -> VO, for the FQAN field


@dataclass
class _Life:
    """What the events say of one entity."""

    created: float
    deleted: float | None
    spans: list[tuple[float, str | None, dict[str, Any]]]  # (since, state, details)

    def alive_at(self, moment: float) -> bool:
        return self.created <= moment and (self.deleted is None or self.deleted > moment)

    def details_at(self, moment: float) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for since, _state, details in self.spans:
            if since <= moment:
                found = details
        return found

    def seconds_in(self, state: str, until: float) -> int:
        """Seconds spent in `state` from creation until `until` (or deletion)."""
        end = min(until, self.deleted) if self.deleted is not None else until
        total = 0.0
        for index, (since, current, _) in enumerate(self.spans):
            following = self.spans[index + 1][0] if index + 1 < len(self.spans) else end
            if current == state:
                total += max(0.0, min(following, end) - since)
        return int(total)


def _lives(events: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], _Life]]:
    """Entity id -> (its first event, its life)."""
    lives: dict[str, tuple[dict[str, Any], _Life]] = {}
    for event in events:
        moment = event["time"].timestamp()
        known = lives.get(event["entity_id"])
        if known is None:
            known = (event, _Life(moment, None, []))
            lives[event["entity_id"]] = known
        life = known[1]
        if event["event"] == "deleted":
            life.deleted = moment
        else:
            life.spans.append((moment, event["state"], event["details"]))
    return lives


def cloud_records(repo: Repository, site: Site, start: datetime, end: datetime
                  ) -> list[dict[str, str]]:
    """A record for every compute that existed during [start, end): its usage
    from creation until `end` (APEL keeps the latest record of each VM)."""
    lives = _lives(repo.usage_events(until=end, kinds=[
        COMPUTE.type_id, STORAGE.type_id, NETWORK.type_id, STORAGELINK.type_id,
        NETWORKINTERFACE.type_id]))
    until = end.timestamp()
    by_kind: dict[str, list[tuple[dict[str, Any], _Life]]] = defaultdict(list)
    for first, life in lives.values():
        by_kind[first["kind"]].append((first, life))
    volumes = {f"{STORAGE.location}{first['entity_id']}": life for first, life
               in by_kind[STORAGE.type_id]}
    networks = {f"{NETWORK.location}{first['entity_id']}": life for first, life
                in by_kind[NETWORK.type_id]}
    records = []
    for first, life in by_kind[COMPUTE.type_id]:
        if life.created >= until or (life.deleted is not None
                                     and life.deleted < start.timestamp()):
            continue
        location = f"{COMPUTE.location}{first['entity_id']}"
        moment = min(until, life.deleted) - 0.001 if life.deleted else until - 0.001
        attributes = life.details_at(moment).get("attributes", {})
        mixins = life.details_at(moment).get("mixins", [])
        links = [(link_first, link_life.details_at(moment).get("attributes", {}))
                 for kind in (STORAGELINK.type_id, NETWORKINTERFACE.type_id)
                 for link_first, link_life in by_kind[kind] if link_life.alive_at(moment)]
        links = [(f, a) for f, a in links if a.get("occi.core.source") == location]
        disk = sum(float(volumes[a["occi.core.target"]].details_at(moment).get(
            "attributes", {}).get("occi.storage.size") or 0)
            for f, a in links if f["kind"] == STORAGELINK.type_id
            and a.get("occi.core.target") in volumes)
        public = sum(1 for f, a in links if f["kind"] == NETWORKINTERFACE.type_id
                     and a.get("occi.core.target") in networks
                     and PUBLIC_NETWORK.type_id in networks[a["occi.core.target"]].details_at(
                         moment).get("mixins", []))
        # and the reserved public addresses that lead to it (at /ipreservation/<id>)
        public += sum(1 for f, a in links if f["kind"] == NETWORKINTERFACE.type_id
                      and str(a.get("occi.core.target", "")).startswith(
                          str(IPRESERVATION.location)))
        cores = int(float(attributes.get("occi.compute.cores") or 0))
        wall = life.seconds_in("active", until)
        completed = life.deleted is not None and life.deleted < until
        states = [state for _, state, _ in life.spans]
        owner = first["owner"]
        record = {
            "VMUUID": first["entity_id"], "SiteName": site.name,
            "CloudComputeService": site.service,
            "MachineName": str(attributes.get("occi.core.title")
                               or attributes.get("occi.compute.hostname") or first["entity_id"]),
            "LocalUserId": owner, "LocalGroupId": first["tenant"],
            "GlobalUserName": owner if owner.startswith("/") else None,
            "FQAN": site.vos.get(first["tenant"], first["tenant"]),
            "Status": "completed" if completed else
            "suspended" if states and states[-1] == "suspended" else "started",
            "StartTime": int(life.created),
            "EndTime": int(life.deleted) if completed and life.deleted else None,
            "SuspendDuration": life.seconds_in("suspended", until),
            "WallDuration": wall,
            # The hypervisor's CPU time is not kept after a guest is gone: the
            # allocated CPUs times the wall time, as cASO reports for OpenStack.
            "CpuDuration": wall * cores, "CpuCount": cores,
            "PublicIPCount": public or None,
            "Memory": int(float(attributes.get("occi.compute.memory") or 0) * 1024),
            "Disk": int(disk) if disk else None,
            "ImageId": next((m.rpartition("#")[2] for m in mixins
                             if "os_tpl#" in m and m != OS_TPL.type_id), None),
            "CloudType": site.cloud_type,
        }
        records.append({name: str(record[name]) for name in FIELDS
                        if record.get(name) is not None})
    return records


def apel_message(records: list[dict[str, str]]) -> str:
    """One APEL message holding the records."""
    lines = [HEADER]
    for record in records:
        lines.extend(f"{name}: {value}" for name, value in record.items())
        lines.append("%%")
    return "\n".join(lines) + "\n"


def spool(message: str, directory: Path) -> Path:
    """Put a message into the SSM sender's outgoing queue (a dirq QueueSimple
    directory: one sub-directory per minute, elements written then linked)."""
    now = time.time()
    bucket = directory / f"{int(now) - int(now) % 60:08x}"
    bucket.mkdir(parents=True, exist_ok=True)
    while True:
        name = f"{time.time_ns() // 1000:013x}{secrets.randbelow(16):01x}"
        temporary = bucket / f"{name}.tmp"
        try:
            with temporary.open("x") as handle:
                handle.write(message)
        except FileExistsError:
            continue
        try:
            os.link(temporary, bucket / name)
        except FileExistsError:
            continue
        finally:
            temporary.unlink()
        return bucket / name
