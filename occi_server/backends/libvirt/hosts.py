"""The hypervisor hosts of a site: a libvirt connection to each (one per
process), where each guest is, and where a new guest goes."""

from __future__ import annotations

import logging
import os
import threading

import libvirt

from occi_server.errors import BackendFailure, BackendUnavailable

log = logging.getLogger("occi_server.libvirt")


def message(exc: libvirt.libvirtError) -> str:
    return exc.get_error_message() or str(exc)


class Host:
    """One hypervisor, by its libvirt URI."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._connection: libvirt.virConnect | None = None
        self._owner = os.getpid()
        self._lock = threading.Lock()

    def connection(self) -> libvirt.virConnect:
        with self._lock:
            if self._owner != os.getpid():  # a forked worker opens its own connection
                self._connection, self._owner = None, os.getpid()
            if self._connection is not None:
                try:
                    if self._connection.isAlive():
                        return self._connection
                except libvirt.libvirtError:
                    pass
            try:
                self._connection = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise BackendUnavailable(f"libvirt at {self.uri} is not reachable: "
                                         f"{message(exc)}") from None
            return self._connection


class Hosts:
    """Every host; `prefix` names the domains that are ours; `zones` groups hosts
    by their URIs (None or empty: one zone, "default", of every host)."""

    def __init__(self, uris: list[str], prefix: str,
                 zones: dict[str, list[str]] | None = None) -> None:
        if not uris:
            raise BackendFailure("no libvirt host is configured")
        self.hosts = [Host(uri) for uri in uris]
        by_uri = {host.uri: host for host in self.hosts}
        unknown = {uri for members in (zones or {}).values() for uri in members} - set(by_uri)
        if unknown:
            raise BackendFailure(f"availability zones name hosts that are not configured: "
                                 f"{', '.join(sorted(unknown))}")
        self.zones = {zone: [by_uri[uri] for uri in members]
                      for zone, members in (zones or {}).items()} or {"default": self.hosts}
        self.prefix = prefix
        self._where: dict[str, Host] = {}  # domain name -> the host it was last seen on
        self._lock = threading.Lock()

    def domain(self, name: str) -> libvirt.virDomain | None:
        """The domain, wherever it is; None only when every host answered that it
        has no such domain (a host that does not answer may have it)."""
        with self._lock:
            cached = self._where.get(name)
        order = [cached, *(h for h in self.hosts if h is not cached)] if cached else self.hosts
        silent = []
        for host in order:
            try:
                domain = host.connection().lookupByName(name)
            except BackendUnavailable:
                silent.append(host.uri)
                continue
            except libvirt.libvirtError as exc:
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
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

    def place(self, memory_kib: int, zone: str | None = None) -> Host:
        """The host for a new guest (in `zone`, when given): among the answering
        hosts whose memory not yet promised to our running guests holds it, the
        one running the fewest of our guests, then the one with the most memory
        left (guests are spread)."""
        if zone is not None and zone not in self.zones:
            raise BackendFailure(f"no availability zone {zone} here")
        members = self.hosts if zone is None else self.zones[zone]
        candidates, silent = [], []
        for position, host in enumerate(members):
            try:
                connection = host.connection()
                total_kib = connection.getInfo()[1] * 1024
                ours = [domain for domain in connection.listAllDomains(
                    libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)
                    if domain.name().startswith(self.prefix)]
                room_kib = total_kib - sum(domain.maxMemory() for domain in ours)
            except (BackendUnavailable, libvirt.libvirtError) as exc:
                reason = getattr(exc, "message", None) or message(exc)
                log.warning("host %s left out of placement: %s", host.uri, reason)
                silent.append(reason)
                continue
            if room_kib >= memory_kib:
                candidates.append((len(ours), -room_kib, position, host))
        if len(silent) == len(members):
            raise BackendUnavailable("; ".join(silent))
        if not candidates:
            raise BackendFailure(f"no hypervisor host has {memory_kib // 1024} MiB of memory "
                                 f"left for the guest (hosts: "
                                 f"{', '.join(h.uri for h in members)})")
        return min(candidates, key=lambda c: c[:3])[3]

    def placed(self, name: str, host: Host) -> None:
        with self._lock:
            self._where[name] = host

    def domains(self) -> list[libvirt.virDomain]:
        """Every domain of every host (a host that does not answer: BackendUnavailable)."""
        found = []
        for host in self.hosts:
            try:
                found.extend(host.connection().listAllDomains(0))
            except libvirt.libvirtError as exc:
                raise BackendUnavailable(f"libvirt at {host.uri} does not list its guests: "
                                         f"{message(exc)}") from None
        return found
