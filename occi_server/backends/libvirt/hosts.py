"""The hypervisor hosts of a site: a libvirt connection to each (one per
process), what each can hold, where each guest is, and where a new guest goes.

Hosts come from the configuration (libvirt_uri or libvirt_hosts) and from the
hosts an operator added (`occi-server host add`), which `follow` reads again
every few seconds. A host that does not answer costs a bounded wait: its
connection is opened with a deadline and kept alive by libvirt's keepalive
(a frozen daemon's calls fail within seconds instead of hanging a request)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import libvirt

from occi_server.backends.base import HostEntry
from occi_server.backends.libvirt.ssh import Target
from occi_server.errors import BackendFailure, BackendUnavailable

log = logging.getLogger("occi_server.libvirt")

OPEN_SECONDS = 10.0  # the longest a connection may take to open
KEEPALIVE = (3, 3)  # probe every 3 s, give up after 3 unanswered probes
FOLLOW_SECONDS = 5.0  # how stale the added hosts may be


# Errors reach us as exceptions; libvirt's default handler would also print
# each to stderr, failed lookups included.
libvirt.registerErrorHandler(lambda _context, _error: None, None)


def message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


@dataclass(frozen=True)
class Capacity:
    """What a host reports, and what our running guests on it take of it."""

    cores: int
    memory_kib: int
    free_kib: int | None  # free or reclaimable (page cache); None: not reported
    guests: int
    vcpus: int  # given to our running guests
    promised_kib: int  # memory given to our running guests
    names: frozenset[str] = frozenset()  # our guests there, running or not

    def room_kib(self) -> int:
        unpromised = self.memory_kib - self.promised_kib
        return unpromised if self.free_kib is None else min(unpromised, self.free_kib)


@dataclass(frozen=True)
class Bounds:
    """Where a guest may go when it moves: its availability zone (None: any)
    and the keys of the computes of its anti-affinity group."""

    zone: str | None = None
    apart_from: tuple[str, ...] = ()


class Host:
    """One hypervisor, by its name and libvirt URI."""

    def __init__(self, uri: str, name: str | None = None, draining: bool = False,
                 ssh_target: Target | None = None) -> None:
        self.uri = uri
        self.name = name or uri
        self.draining = draining
        self.ssh_target = ssh_target  # where the site's key logs in (an added host)
        self._connection: libvirt.virConnect | None = None
        self._keepalive = False  # whether the connection's calls fail when the host hangs
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._opening: threading.Thread | None = None

    @property
    def local(self) -> bool:
        """Whether the host is this machine (its URI names no other one), so
        that it sees this machine's files."""
        return urlsplit(self.uri).hostname in (None, "", "localhost")

    def connection(self) -> libvirt.virConnect:
        with self._lock:
            if self._owner != os.getpid():  # a forked worker opens its own connection
                self._connection, self._opening, self._owner = None, None, os.getpid()
            # One opened before the event loop ran is replaced by one kept alive.
            if self._connection is not None and (self._keepalive or not event_loop_runs()):
                try:
                    if self._connection.isAlive():
                        return self._connection
                except libvirt.libvirtError:
                    pass
            self._connection = self._open()
            return self._connection

    def _open(self) -> libvirt.virConnect:
        """A new connection within OPEN_SECONDS (libvirt's own open has no
        deadline: a host whose daemon is frozen would hold the caller forever);
        once an attempt has outlasted it and still hangs, callers are answered
        at once (those that came meanwhile waited for the first, at most as long)."""
        if self._opening is not None and self._opening.is_alive():
            raise BackendUnavailable(f"libvirt at {self.name} does not answer")
        keepalive = event_loop_runs()
        outcome: dict[str, object] = {}

        def attempt() -> None:
            try:
                outcome["connection"] = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                outcome["error"] = message(exc)

        self._opening = threading.Thread(target=attempt, name=f"libvirt-open {self.name}",
                                         daemon=True)
        self._opening.start()
        self._opening.join(OPEN_SECONDS)
        if "connection" in outcome:
            connection = outcome["connection"]
            assert isinstance(connection, libvirt.virConnect)
            self._keepalive = keepalive
            if keepalive:
                # A driver without keepalive (test:///, local sockets) is never remote.
                with contextlib.suppress(libvirt.libvirtError):
                    connection.setKeepAlive(*KEEPALIVE)
            return connection
        reason = outcome.get("error") or f"no answer within {OPEN_SECONDS:g} s"
        raise BackendUnavailable(f"libvirt at {self.name} is not reachable: {reason}")

    def capacity(self, prefix: str) -> Capacity:
        """Cores, memory and free memory as the host reports them, and what our
        running guests (named with `prefix`) take."""
        try:
            connection = self.connection()
            info = connection.getInfo()
            domains = [domain for domain in connection.listAllDomains(0)
                       if domain.name().startswith(prefix)]
            ours = [domain.info() for domain in domains if domain.isActive()]
            free_kib = _available_kib(connection)
        except libvirt.libvirtError as exc:
            raise BackendUnavailable(f"libvirt at {self.name} did not say what it holds: "
                                     f"{message(exc)}") from None
        return Capacity(cores=info[2], memory_kib=info[1] * 1024, free_kib=free_kib,
                        guests=len(ours), vcpus=sum(guest[3] for guest in ours),
                        promised_kib=sum(guest[1] for guest in ours),
                        names=frozenset(domain.name() for domain in domains))


    def free_disk(self, path: Path) -> int | None:
        """Bytes free where guests' disks go on this host (`path`), as libvirt
        reports them for a directory pool there; None when the host has no
        such directory."""
        try:
            connection = self.connection()
            try:
                return int(connection.storagePoolLookupByTargetPath(str(path)).info()[3])
            except libvirt.libvirtError:
                pass
            probe = connection.storagePoolCreateXML(
                f"<pool type='dir'><name>occi-probe-{uuid.uuid4().hex[:8]}</name><target>"
                f"<path>{escape(str(path))}</path></target></pool>", 0)
        except libvirt.libvirtError:
            return None
        try:
            return int(probe.info()[3])
        finally:
            probe.destroy()

    def guests(self, prefix: str) -> list[str]:
        """Our domains on this host, running or not."""
        try:
            return [domain.name() for domain in self.connection().listAllDomains(0)
                    if domain.name().startswith(prefix)]
        except libvirt.libvirtError as exc:
            raise BackendUnavailable(f"libvirt at {self.name} does not list its guests: "
                                     f"{message(exc)}") from None

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._connection.close()
                self._connection = None


def _available_kib(connection: libvirt.virConnect) -> int | None:
    """Memory the host has free or can reclaim (buffers and page cache)."""
    try:
        stats = connection.getMemoryStats(libvirt.VIR_NODE_MEMORY_STATS_ALL_CELLS)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT:
            return None
        raise
    return int(stats["free"] + stats.get("buffers", 0) + stats.get("cached", 0))


class Hosts:
    """Every host; `prefix` names the domains that are ours; `zones` groups the
    configured hosts by their URIs (None or empty: one zone, "default", of
    every host); a guest's vCPUs may add up to `cpu_ratio` times a host's cores."""

    def __init__(self, uris: list[str], prefix: str,
                 zones: dict[str, list[str]] | None = None, cpu_ratio: float = 16.0) -> None:
        if not uris:
            raise BackendFailure("no libvirt host is configured")
        self._configured = [Host(uri) for uri in uris]
        by_uri = {host.uri: host for host in self._configured}
        unknown = {uri for members in (zones or {}).values() for uri in members} - set(by_uri)
        if unknown:
            raise BackendFailure(f"availability zones name hosts that are not configured: "
                                 f"{', '.join(sorted(unknown))}")
        self._zones = {zone: [by_uri[uri] for uri in members]
                       for zone, members in (zones or {}).items()}
        self.prefix = prefix
        self.cpu_ratio = cpu_ratio
        self._added: list[Host] = []
        self._source: Callable[[], list[HostEntry]] | None = None
        self._followed = 0.0
        self._where: dict[str, Host] = {}  # domain name -> the host it was last seen on
        self._lock = threading.Lock()

    def follow(self, source: Callable[[], list[HostEntry]]) -> None:
        """Take the hosts an operator added from `source` (read again every
        FOLLOW_SECONDS); an entry with a configured host's URI drains it or not."""
        self._source, self._followed = source, 0.0

    @property
    def hosts(self) -> list[Host]:
        self._refresh()
        return self._configured + self._added

    @property
    def zones(self) -> dict[str, list[Host]]:
        return self._zones or {"default": self.hosts}

    def _refresh(self) -> None:
        if self._source is None or time.monotonic() - self._followed < FOLLOW_SECONDS:
            return
        try:
            entries = self._source()
        except BackendUnavailable as exc:
            log.warning("the added hypervisor hosts were not read again: %s", exc.message)
            return
        with self._lock:
            self._followed = time.monotonic()
            known = {host.uri: host for host in self._configured + self._added}
            configured = {host.uri for host in self._configured}
            for host in self._configured:
                host.draining = False
            added = []
            for entry in entries:
                host = known.get(entry.uri) or Host(entry.uri, entry.name)
                host.name, host.draining = entry.name, entry.draining
                host.ssh_target = Target.parse(entry.ssh_target) if entry.ssh_target else None
                if entry.uri not in configured:
                    added.append(host)
            self._added = added

    def domain(self, name: str) -> libvirt.virDomain | None:
        """The domain, wherever it is; None only when every host answered that it
        has no such domain (a host that does not answer may have it)."""
        hosts = self.hosts
        with self._lock:
            cached = self._where.get(name)
        order = [cached, *(h for h in hosts if h is not cached)] if cached in hosts else hosts
        silent = []
        for host in order:
            try:
                domain = host.connection().lookupByName(name)
            except BackendUnavailable:
                silent.append(host.name)
                continue
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue
                if exc.get_error_domain() == libvirt.VIR_FROM_RPC:  # the host went away
                    silent.append(host.name)
                    continue
                raise BackendFailure(message(exc)) from None
            with self._lock:
                self._where[name] = host
            return domain
        if silent:
            raise BackendUnavailable(f"{name} is on no answering host, and libvirt at "
                                     f"{', '.join(silent)} does not answer")
        with self._lock:
            self._where.pop(name, None)
        return None

    def place(self, memory_kib: int, vcpus: int = 1, zone: str | None = None,
              avoid: frozenset[str] = frozenset(), only: str | None = None,
              away_from: Host | None = None) -> Host:
        """The host for a new guest, or one moving off host `away_from` (in
        `zone`, when given; host `only`, when given, if it can): among the
        answering hosts not draining, with none of the domains `avoid` names,
        whose memory (not yet promised to our running guests, and free) holds
        it and whose cores are not yet taken `cpu_ratio` times over, the one
        running the fewest of our guests, then the one with the most memory
        left (guests are spread)."""
        zones = self.zones
        if zone is not None and zone not in zones:
            raise BackendFailure(f"no availability zone {zone} here")
        members = [host for host in (self.hosts if zone is None else zones[zone])
                   if not host.draining and only in (None, host.name) and host is not away_from]
        if only is not None and not members:
            raise BackendFailure(f"no host {only} takes guests (see occi-server host list)")
        if away_from is not None and not members:
            raise BackendFailure("no other hypervisor host"
                                 f"{f' in zone {zone}' if zone else ''} takes guests")
        if not members:
            raise BackendFailure("every hypervisor host is draining: no new guest can start")
        candidates, silent, crowded = [], [], []
        for position, host in enumerate(members):
            try:
                capacity = host.capacity(self.prefix)
            except BackendUnavailable as exc:
                log.warning("host %s left out of placement: %s", host.name, exc.message)
                silent.append(exc.message)
                continue
            if capacity.names & avoid:
                crowded.append(host.name)
            elif capacity.room_kib() >= memory_kib \
                    and capacity.vcpus + vcpus <= capacity.cores * self.cpu_ratio:
                candidates.append((capacity.guests, -capacity.room_kib(), position, host))
        if len(silent) == len(members):
            raise BackendUnavailable("; ".join(silent))
        if not candidates and crowded and len(crowded) + len(silent) == len(members):
            raise BackendFailure("every hypervisor host runs a compute of its anti-affinity "
                                 f"group already ({', '.join(crowded)})")
        if not candidates:
            raise BackendFailure(f"no hypervisor host has {memory_kib // 1024} MiB of memory "
                                 f"and {vcpus} core(s) left for the guest (hosts: "
                                 f"{', '.join(h.name for h in members)})")
        return min(candidates, key=lambda c: c[:3])[3]

    def placed(self, name: str, host: Host) -> None:
        with self._lock:
            self._where[name] = host

    def where(self, name: str) -> Host | None:
        """The host domain `name` was last seen on (by `domain` or `placed`)."""
        with self._lock:
            return self._where.get(name)

    def domains(self) -> list[libvirt.virDomain]:
        """Every domain of every host (a host that does not answer: BackendUnavailable)."""
        found = []
        for host in self.hosts:
            try:
                found.extend(host.connection().listAllDomains(0))
            except libvirt.libvirtError as exc:
                raise BackendUnavailable(f"libvirt at {host.name} does not list its guests: "
                                         f"{message(exc)}") from None
        return found


_event_loop_lock = threading.Lock()
_event_loop_pid = 0


def start_event_loop() -> None:
    """libvirt delivers events and keepalives through an event loop a process
    runs in a thread of its own. Started by the process that uses it (a
    worker's reconciler), never by one that forks afterwards: the children
    would share the loop's wake-up pipe with it and miss their wake-ups."""
    global _event_loop_pid
    with _event_loop_lock:
        if _event_loop_pid:
            return
        libvirt.virEventRegisterDefaultImpl()
        _event_loop_pid = os.getpid()

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, name="libvirt-events", daemon=True).start()


def event_loop_runs() -> bool:
    return _event_loop_pid == os.getpid()
