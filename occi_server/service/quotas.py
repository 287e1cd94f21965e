"""Per-tenant quotas: what a tenant's resources add up to, checked before a
change that makes them grow (creates, resizes, links)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from occi_server.core import Entity
from occi_server.errors import Forbidden
from occi_server.kinds.infrastructure import (
    COMPUTE,
    IPRESERVATION,
    NETWORK,
    NETWORKINTERFACE,
    PUBLIC_NETWORK,
    STORAGE,
)
from occi_server.kinds.tenancy import BUILTIN_LIMITS, QUOTA, QUOTAS
from occi_server.store import DEFAULT_TENANT, Repository

CORES, MEMORY, SIZE = "occi.compute.cores", "occi.compute.memory", "occi.storage.size"


def limits_of(quotas: dict[str, dict[str, float]], tenant: str) -> dict[str, float]:
    """The tenant's limits: its own entry over the "default" one over the built-in
    limits; negative means unlimited."""
    merged = {**BUILTIN_LIMITS, **quotas.get(DEFAULT_TENANT, {}), **quotas.get(tenant, {})}
    return {name: float(limit) for name, limit in merged.items() if float(limit) >= 0}


def usage(entities: Iterable[Entity], public_networks: set[str]) -> dict[str, float]:
    """What the entities use, quota by quota."""
    used = dict.fromkeys(QUOTAS, 0.0)
    for entity in entities:
        attributes = entity.attributes
        if entity.kind == COMPUTE.type_id:
            used["instances"] += 1
            used["cores"] += float(attributes.get(CORES) or 0)
            used["memory"] += float(attributes.get(MEMORY) or 0)
        elif entity.kind == STORAGE.type_id:
            used["volumes"] += 1
            used["storage"] += float(attributes.get(SIZE) or 0)
        elif entity.kind == NETWORK.type_id:
            used["networks"] += 1
        elif (entity.kind == NETWORKINTERFACE.type_id and entity.target in public_networks) \
                or entity.kind == IPRESERVATION.type_id:
            used["public_ips"] += 1
    return used


def tenant_usage(repo: Repository, tenant: str, names: Iterable[str] = QUOTAS
                 ) -> dict[str, float]:
    """What a tenant's resources use now, as the store keeps it: every quota's
    usage, public addresses only if among `names` (counted from the links to
    public networks, a statement of their own; the rest is one read of the
    tenant's totals)."""
    totals = repo.totals(tenant)
    compute = totals.get(COMPUTE.type_id, {})
    storage = totals.get(STORAGE.type_id, {})
    used = {"instances": compute.get("count", 0.0), "cores": compute.get(CORES, 0.0),
            "memory": compute.get(MEMORY, 0.0), "volumes": storage.get("count", 0.0),
            "storage": storage.get(SIZE, 0.0),
            "networks": totals.get(NETWORK.type_id, {}).get("count", 0.0)}
    if "public_ips" in names:
        used["public_ips"] = float(repo.links_to_mixin(
            tenant, NETWORKINTERFACE.type_id, PUBLIC_NETWORK.type_id)) \
            + totals.get(IPRESERVATION.type_id, {}).get("count", 0.0)
    return used


def report(repo: Repository, quotas: dict[str, dict[str, float]], tenant: str
           ) -> dict[str, dict[str, Any]]:
    """Each quota's limit (None: unlimited) and current usage, for the API."""
    limits = limits_of(quotas, tenant)
    used = tenant_usage(repo, tenant)
    return {name: {"limit": limits.get(name), "usage": used[name], "counts": what}
            for name, what in QUOTAS.items()}


def quota_entity(repo: Repository, quotas: dict[str, dict[str, float]], tenant: str) -> Entity:
    """A tenant's quotas as an entity of the quota kind."""
    attributes: dict[str, Any] = {"occi.core.id": tenant, "occi.core.title":
                                  f"Quotas of tenant {tenant}",
                                  "occi_server.quota.tenant": tenant}
    for name, values in report(repo, quotas, tenant).items():
        if values["limit"] is not None:
            attributes[f"occi_server.quota.{name}.limit"] = values["limit"]
        attributes[f"occi_server.quota.{name}.usage"] = values["usage"]
    return Entity(id=tenant, kind=QUOTA.type_id, location=f"{QUOTA.location}{tenant}",
                  attributes=attributes, tenant=tenant)


def visible_tenants(repo: Repository, known: tuple[str, ...]) -> list[str]:
    """The tenants whose quotas the transaction's scope may read: its own, or
    (operators) every tenant the site knows of or that owns something."""
    if repo.scope is not None and not repo.scope.everything:
        return [repo.scope.tenant]
    return sorted({*known, *repo.tenants()})


class QuotaCheck:
    """The quota check of one transaction: `admit(entity)` before an entity is
    stored (or changed) refuses it if a limit would be passed that its tenant's
    usage had not passed already; each admitted change is added to the usage
    read first, so a request's several creates count together. `confirm()` as
    the transaction ends makes it hold against concurrent transactions: where
    writers run side by side (PostgreSQL), the tenants are locked and their
    usage read again, this transaction's writes and every commit before
    included, and checked once more. A tenant's requests thus take turns only
    from that point to their commit, not through their whole transaction."""

    def __init__(self, repo: Repository, quotas: dict[str, dict[str, float]]) -> None:
        self.repo = repo
        self.quotas = quotas
        self._used: dict[str, dict[str, float]] = {}  # as read, with what was admitted
        self._added: dict[str, dict[str, float]] = {}  # what was admitted, by tenant

    def admit(self, entity: Entity, target: Entity | None = None, *,
              was: Entity | None = None) -> None:
        """`entity` as it would be stored (`target`: a link's); `was`: as it is
        stored now, when it is changed (None: a new one)."""
        tenant = entity.tenant or (self.repo.scope.tenant if self.repo.scope else DEFAULT_TENANT)
        limits = limits_of(self.quotas, tenant)
        if not limits:
            return
        public = {target.location} if target is not None \
            and PUBLIC_NETWORK.type_id in target.mixins else set()
        added = usage([entity], public)
        removed = usage([was] if was is not None else [], public)
        change = {name: added[name] - removed[name] for name in QUOTAS}
        before = self._usage(tenant, [name for name in limits if change[name] > 0])
        after = {name: value + change[name] for name, value in before.items()}
        _refuse_beyond(tenant, limits, before, after)
        self._used[tenant] = after
        admitted = self._added.setdefault(tenant, dict.fromkeys(QUOTAS, 0.0))
        for name in QUOTAS:
            admitted[name] += change[name]

    def _usage(self, tenant: str, growing: list[str]) -> dict[str, float]:
        """The tenant's usage as first read, with what was admitted since; a
        quota a change grows that was not read yet (public addresses, read
        only when they grow: a statement of their own) is read now."""
        used = self._used.get(tenant)
        if used is None:
            return tenant_usage(self.repo, tenant, growing)
        if all(name in used for name in growing):
            return used
        # What the transaction wrote is in what is read now, as it is in `used`.
        return {**tenant_usage(self.repo, tenant, growing), **used}

    def confirm(self) -> None:
        """The check again with the tenants locked, where others may have
        committed since their usage was read (raises: the transaction rolls back)."""
        grown = sorted(tenant for tenant, added in self._added.items()
                       if any(value > 0 for value in added.values()))
        if not grown or not self.repo.lock_tenants(grown):
            return
        for tenant in grown:
            added = self._added[tenant]
            now = tenant_usage(self.repo, tenant,  # this transaction's writes included
                               [name for name, value in added.items() if value > 0])
            before = {name: value - added[name] for name, value in now.items()}
            _refuse_beyond(tenant, limits_of(self.quotas, tenant), before, now)


def _refuse_beyond(tenant: str, limits: dict[str, float], before: dict[str, float],
                   after: dict[str, float]) -> None:
    """Forbidden if a quota would pass its limit by growing from `before` to
    `after` (those of the quotas read)."""
    for name, limit in limits.items():
        if name in after and after[name] > limit and after[name] > before[name]:
            raise Forbidden(
                f"quota {name} of tenant {tenant} exceeded: this would make "
                f"{after[name]:g} {QUOTAS[name]}, the limit is {limit:g} "
                f"({after[name] - limit:g} over); GET /quota/ shows usage and limits")
