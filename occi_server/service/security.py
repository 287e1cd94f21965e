"""What filters each network interface: the rules of the security groups its
compute is linked to, or the site's default rules when it is in none. Jobs
read them once the request has committed (so that two changes applied in
either order end with the last one's rules) and put them in place; the
reconciler puts back filters that vanished and removes those of interfaces
that are gone."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from occi_server.backends.base import Backends
from occi_server.core import Entity
from occi_server.errors import BackendFailure, BackendUnavailable
from occi_server.kinds.infrastructure import (
    NETWORK,
    NETWORKINTERFACE,
    SECURITY_RULES,
    SECURITYGROUPLINK,
)
from occi_server.kinds.rules import Rule, parse_rules
from occi_server.service.jobs import busy_with
from occi_server.store import Repository, Store

log = logging.getLogger("occi_server.security")


def rules_for(repo: Repository, compute: Entity, default: Sequence[Rule],
              without: str | None = None) -> list[Rule]:
    """The rules of the compute's security groups (their union; not through the
    link `without`, which is going), or `default`."""
    groups = [repo.by_location(link.target or "")
              for link in repo.links_from([compute.id])[compute.id]
              if link.kind == SECURITYGROUPLINK.type_id and link.id != without]
    if not groups:
        return list(default)
    rules: list[Rule] = []
    for group in groups:
        if group is not None:
            rules += [rule for rule in parse_rules(group.attributes.get(SECURITY_RULES) or [])
                      if rule not in rules]
    return rules


def interfaces_of(repo: Repository, compute: Entity) -> list[tuple[Entity, Entity]]:
    """The compute's network interfaces, each with its network."""
    found = []
    for link in repo.links_from([compute.id])[compute.id]:
        if link.kind == NETWORKINTERFACE.type_id and link.target_kind == NETWORK.type_id:
            network = repo.by_location(link.target or "")
            if network is not None:
                found.append((link, network))
    return found


def guard_compute(store: Store, backends: Backends, compute_id: str,
                  default: Sequence[Rule], *, only: str | None = None,
                  without: str | None = None) -> None:
    """Put the filters of the compute's interfaces (of interface `only`, when
    given) in place with the rules stored now (not those of the link
    `without`). A compute being deleted is left alone: its interfaces' filters
    go with them."""
    with store.transaction(write=False) as repo:
        compute = repo.get(compute_id)
        if compute is None or busy_with(repo, compute_id, "deleting"):
            return
        interfaces = [(link, network) for link, network in interfaces_of(repo, compute)
                      if only is None or link.id == only]
        rules = rules_for(repo, compute, default, without)
    for link, network in interfaces:
        backends.network.guard(link, network, rules)


def repair_guards(repo: Repository, backends: Backends, default: Sequence[Rule]) -> int:
    """Put back the filters of interfaces that have none and remove those of
    interfaces that no longer exist; how many were repaired."""
    network = backends.network
    try:
        present = network.guarded()
    except (BackendFailure, BackendUnavailable) as exc:
        log.warning("interface filters not checked: %s", exc)
        return 0
    links = [link for link in repo.list(kinds=[NETWORKINTERFACE.type_id])
             if link.target_kind == NETWORK.type_id]
    repaired = 0
    for key in present - {link.key for link in links}:
        network.unguard(key)
        repaired += 1
    for link in links:
        if link.key in present or link.attributes.get(
                "occi.networkinterface.state") != "active":
            continue
        compute, target = repo.by_location(link.source or ""), repo.by_location(
            link.target or "")
        if compute is None or target is None:
            continue
        try:
            network.guard(link, target, rules_for(repo, compute, default))
        except (BackendFailure, BackendUnavailable) as exc:
            log.warning("the filter of %s could not be put back: %s", link.location, exc)
            continue
        log.warning("put back the filter of %s, which had vanished", link.location)
        repaired += 1
    return repaired
