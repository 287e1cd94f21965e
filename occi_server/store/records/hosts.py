"""The hypervisor hosts an operator added: by name, with the SSH target (or
libvirt URI), whether they are draining, and their pinned host keys."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, insert, select, update

from occi_server.store.records.base import Records, _now
from occi_server.store.tables import hypervisor_hosts


@dataclass(frozen=True)
class HostRecord:
    name: str
    target: str
    draining: bool
    host_keys: str


class HostRecords(Records):
    def hypervisor_hosts(self) -> list[HostRecord]:
        rows = self.connection.execute(select(
            hypervisor_hosts.c.name, hypervisor_hosts.c.target, hypervisor_hosts.c.draining,
            hypervisor_hosts.c.host_keys).order_by(hypervisor_hosts.c.added,
                                                   hypervisor_hosts.c.name))
        return [HostRecord(*row) for row in rows]

    def add_hypervisor_host(self, host: HostRecord) -> None:
        self.connection.execute(insert(hypervisor_hosts).values(
            name=host.name, target=host.target, draining=host.draining,
            host_keys=host.host_keys, added=_now()))

    def drain_hypervisor_host(self, name: str, draining: bool) -> bool:
        """Whether new guests stay off host `name`; False when there is no such host."""
        return bool(self.connection.execute(update(hypervisor_hosts).where(
            hypervisor_hosts.c.name == name).values(draining=draining)).rowcount)

    def remove_hypervisor_host(self, name: str) -> bool:
        return bool(self.connection.execute(delete(hypervisor_hosts).where(
            hypervisor_hosts.c.name == name)).rowcount)
