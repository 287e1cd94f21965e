"""The site's hypervisor hosts as an operator manages them (`occi-server
host …`): added by SSH target with their host keys pinned and the site's key
let in, listed with what each reports, drained, removed. The hosts live in
the store, so every front end places guests on the same ones."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from occi_server.backends.base import HostEntry
from occi_server.backends.libvirt import ssh
from occi_server.backends.libvirt.hosts import Bounds
from occi_server.errors import BackendFailure, BackendUnavailable, Conflict, NotFound
from occi_server.kinds.infrastructure import COMPUTE, zone_mixins
from occi_server.service.rooms.compute import group_members
from occi_server.store.records.hosts import HostRecord

if TYPE_CHECKING:
    from occi_server.backends.libvirt.hosts import Capacity
    from occi_server.config import Config
    from occi_server.store import Store

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


@dataclass(frozen=True)
class HostView:
    """One host as `host list` shows it: where it is, whether new guests go
    there, and what it reports (or why it does not answer)."""

    name: str
    target: str
    configured: bool
    draining: bool
    capacity: Capacity | None
    free_disk_bytes: int | None
    problem: str = ""


def entries(store: Store, data_path: Path) -> list[HostEntry]:
    """The added hosts, as the libvirt backend follows them; the pinned host
    keys are written where libvirt checks them first."""
    with store.transaction(write=False) as repo:
        records = repo.hypervisor_hosts()
    ssh.write_known_hosts(data_path, _pinned(records))
    return [HostEntry(record.name, ssh.libvirt_uri(record.target, data_path), record.draining,
                      None if ssh.is_uri(record.target) else record.target)
            for record in records]


def configured_uris(config: Config) -> list[str]:
    if config.backend_for("compute") != "libvirt":
        return []
    return config.libvirt_hosts or [config.libvirt_uri]


def add(store: Store, config: Config, target: str, *, name: str | None = None,
        fingerprint: str | None = None, confirm: Callable[[str], bool] | None = None,
        install_key: bool = False) -> HostView:
    """Add a host: pin its host key (the one `fingerprint` names, or the one
    `confirm` accepts), make sure the site's key logs in (installing it with
    the user's password when `install_key`), and read what the host holds
    through libvirt; stored only once all of it worked."""
    data_path = config.data_path
    name = name or _name_of(target)
    if not NAME.fullmatch(name):
        raise BackendFailure(f"{name!r} is not a host name (letters, digits, '.', '_', '-'; "
                             "give one with --name)")
    with store.transaction(write=False) as repo:
        records = repo.hypervisor_hosts()
    if any(record.name == name for record in records):
        raise Conflict(f"there is a host {name} already")
    if any(record.target == target for record in records) \
            or target in configured_uris(config):
        raise Conflict(f"{target} is one of the site's hosts already")
    host_keys: list[str] = []
    if not ssh.is_uri(target):
        parsed = ssh.Target.parse(target)
        target = str(parsed)
        host_keys = _pin(parsed, fingerprint, confirm)
        ssh.write_known_hosts(data_path, _pinned(records) + host_keys)
        try:
            _let_in(parsed, data_path, install_key)
        except BackendFailure:
            ssh.write_known_hosts(data_path, _pinned(records))
            raise
    record = HostRecord(name, target, False, "\n".join(host_keys))
    view = _view(record, config, configured=False)
    if view.capacity is None:
        ssh.write_known_hosts(data_path, _pinned(records))
        raise BackendUnavailable(f"libvirt on {target} does not answer: {view.problem}")
    with store.transaction(write=True) as repo:
        repo.add_hypervisor_host(record)
    return view


def listing(store: Store, config: Config) -> list[HostView]:
    """Every host, configured and added, with what each reports now."""
    with store.transaction(write=False) as repo:
        records = {record.target: record for record in repo.hypervisor_hosts()}
    ssh.write_known_hosts(config.data_path, _pinned(list(records.values())))
    views = [_view(records.pop(uri, HostRecord(uri, uri, False, "")), config, configured=True)
             for uri in configured_uris(config)]
    return views + [_view(record, config, configured=False) for record in records.values()]


def drain(store: Store, config: Config, name: str, draining: bool = True) -> None:
    """New guests stay off host `name` (or go there again). A configured host
    (named by its URI) is drained by a record of its own."""
    with store.transaction(write=True) as repo:
        if repo.drain_hypervisor_host(name, draining):
            return
        if name not in configured_uris(config):
            raise NotFound(f"no host {name}")
        if draining:
            repo.add_hypervisor_host(HostRecord(name, name, True, ""))


def evacuate(store: Store, config: Config, name: str) -> list[str]:
    """Move every guest of the site off host `name` (drained first, so that
    none goes there meanwhile), each where placement puts it; running guests
    move live. Returns a line per guest moved."""
    drain(store, config, name)
    compute = _compute(store, config)
    return compute.evacuate(name, _bounds(store, config, compute.zones()))


def move(store: Store, config: Config, location: str, to: str | None) -> str:
    """Move the compute at `location` to host `to` (or where placement puts
    it); live when it runs. Returns what moved where."""
    with store.transaction(write=False) as repo:
        entity = repo.by_location(location)
    if entity is None or entity.kind != COMPUTE.type_id:
        raise NotFound(f"no compute at {location}")
    compute = _compute(store, config)
    bounds = _bounds(store, config, compute.zones())
    return compute.move_guest(entity, to, bounds.get(entity.key, Bounds()))


def _bounds(store: Store, config: Config, zones: list[str]) -> dict[str, Bounds]:
    """Where each compute may move (by key): the availability zone it was
    created in, away from its anti-affinity group's other members (as a
    create places it, rooms/compute.py)."""
    with store.transaction(write=False) as repo:
        computes = repo.everywhere().list(kinds=[COMPUTE.type_id])
    zone_of = {mixin.type_id: mixin.term
               for mixin in zone_mixins(config.effective_site_scheme, zones)}
    groups = group_members(computes)
    return {compute.key: Bounds(next((zone_of[m] for m in compute.mixins if m in zone_of),
                                     None),
                                tuple(groups.get(compute.key, ())))
            for compute in computes}


def _compute(store: Store, config: Config) -> Any:
    """The site's libvirt compute backend, following the added hosts."""
    from occi_server.backends.registry import factory
    from occi_server.images.catalogue import ImageCatalogue
    compute = factory("compute", "libvirt")(config, ImageCatalogue(config.images_path))
    compute.follow_hosts(lambda: entries(store, config.data_path))
    return compute


def remove(store: Store, config: Config, name: str, *, force: bool = False) -> None:
    """Forget an added host. Refused while it has guests of ours (delete or
    move them first), or does not answer (unless `force`)."""
    with store.transaction(write=False) as repo:
        record = next((r for r in repo.hypervisor_hosts() if r.name == name), None)
    if record is None:
        raise NotFound(f"no host {name} was added (hosts of the configuration file are "
                       "removed there)")
    if record.target not in configured_uris(config):
        view = _view(record, config, configured=False)
        if view.capacity is None and not force:
            raise BackendUnavailable(f"{name} does not answer ({view.problem}); its guests "
                                     "cannot be counted: use --force to forget it anyway")
        if view.capacity is not None and view.capacity.names:
            raise Conflict(f"{name} still has guests of this site: delete them (or move "
                           "them) first")
    with store.transaction(write=True) as repo:
        repo.remove_hypervisor_host(name)


def _name_of(target: str) -> str:
    if ssh.is_uri(target):
        host = target.partition("://")[2].partition("/")[0].rpartition("@")[2]
        return host.partition(":")[0] or target
    return ssh.Target.parse(target).address


def _pinned(records: list[HostRecord]) -> list[str]:
    return [line for record in records for line in record.host_keys.splitlines() if line]


def _pin(target: ssh.Target, fingerprint: str | None,
         confirm: Callable[[str], bool] | None) -> list[str]:
    offered = ssh.scan(target)
    prints = ssh.fingerprints(offered)
    if fingerprint is not None:
        if fingerprint not in prints:
            raise BackendFailure(f"{target.address} offers host key(s) {', '.join(prints)}, "
                                 f"not {fingerprint}: refused (check the host's own "
                                 "`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)")
        return [line for line, found in zip(offered, prints, strict=True)
                if found == fingerprint]
    question = (f"{target.address} offers host key(s) {', '.join(prints)}; pin them and "
                "trust this host?")
    if confirm is None or not confirm(question):
        raise BackendFailure(f"the host key of {target.address} was not confirmed; give "
                             f"--host-key with one of {', '.join(prints)} once checked on "
                             "the host (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)")
    return offered


def _let_in(target: ssh.Target, data_path: Path, install_key: bool) -> None:
    if ssh.logs_in(target, data_path):
        return
    if install_key:
        ssh.install_key(target, data_path)
        if ssh.logs_in(target, data_path):
            return
    raise BackendFailure(f"{target} does not let the site's key in: add this line to "
                         f"~{target.user}/.ssh/authorized_keys there, or run again with "
                         f"--install-key (ssh-copy-id asks for the password):\n"
                         f"{ssh.public_key(data_path)}")


def _view(record: HostRecord, config: Config, *, configured: bool) -> HostView:
    from occi_server.backends.libvirt.backend import PREFIX
    from occi_server.backends.libvirt.hosts import Host
    host = Host(ssh.libvirt_uri(record.target, config.data_path), record.name)
    try:
        capacity = host.capacity(PREFIX)
        free_disk = host.free_disk(config.instances_path)
    except BackendUnavailable as exc:
        return HostView(record.name, record.target, configured, record.draining, None, None,
                        exc.message)
    finally:
        host.close()
    return HostView(record.name, record.target, configured, record.draining, capacity,
                    free_disk)
