"""The service layer: validates requests against the model, persists them in
the store and drives the backends. HTTP knows nothing of backends; backends
know nothing of HTTP."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from occi_server import __version__
from occi_server.backends.base import Backend, Backends
from occi_server.config import Config, ConfigError
from occi_server.core import Entity, Kind, Mixin, Model
from occi_server.errors import BackendUnavailable, NotFound, OCCIError
from occi_server.faults import checkpoint
from occi_server.kinds import (
    DEFAULT_FLAVOURS,
    Flavour,
    builtin_categories,
    flavour_mixins,
    monitoring_mixin,
)
from occi_server.kinds.infrastructure import COMPUTE, pool_mixins, zone_mixins
from occi_server.kinds.rules import parse_rules
from occi_server.marketplace import Marketplace, Policy, next_change
from occi_server.service import hosts as site_hosts
from occi_server.service.accounting import Site, cloud_records
from occi_server.service.glue import Share, glue_document
from occi_server.service.imagemixins import image_mixin, volume_image_mixin
from occi_server.service.jobs import reported, run_job, state_attribute, take_over
from occi_server.service.models import ModelCache
from occi_server.service.presence import Presence, holder_id
from occi_server.service.quotas import limits_of, report, visible_tenants
from occi_server.service.rooms.ipreservation import repair_published
from occi_server.service.security import repair_guards
from occi_server.service.work import QUERY_PATHS, Settings, Work, server_mixins
from occi_server.store import DEFAULT_TENANT, Repository, Scope, Store, audience_of

__all__ = ["QUERY_PATHS", "Reconciler", "Service", "Work"]

log = logging.getLogger("occi_server.service")


class Service:
    def __init__(self, config: Config, store: Store, backends: Backends) -> None:
        self.config = config
        self.store = store
        self.backends = backends
        # The hosts an operator added (`occi-server host add`) take guests too.
        backends.compute.follow_hosts(lambda: site_hosts.entries(store, config.data_path))
        policy = config.marketplace_policy
        self.marketplace = Marketplace(store, config.marketplace_ca_path, Policy(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in policy.items()}))
        self.site_scheme = config.effective_site_scheme
        flavours = [Flavour(**f) for f in config.flavours] if config.flavours \
            else list(DEFAULT_FLAVOURS)
        default = next((f for f in flavours if f.term == config.default_flavour), None)
        if default is None:
            raise ConfigError(f"default_flavour {config.default_flavour!r} is not one of the "
                              f"flavours: {', '.join(f.term for f in flavours)}")
        tags: dict[str, Mixin] = {}
        by_kind: dict[str, str] = {}
        for kind, backend in backends.areas():
            tag = tags.setdefault(backend.name, Mixin(
                self.site_scheme + "backend#", backend.name,
                title=("Simulated backend: no real infrastructure behind this entity"
                       if backend.simulated else f"Served by {backend.label}"),
                location=f"/mixin/backend/{backend.name}/", origin="provider", managed=True))
            by_kind[kind.type_id] = tag.type_id
            if backend.simulated:
                log.warning("the %s backend is SIMULATED: %s resources are not real and carry "
                            "the mixin %s", kind.term, kind.term, tag.type_id)
        # Usage counters are advertised only where the compute backend reports them.
        monitoring = monitoring_mixin(self.site_scheme) if backends.compute.observes else None
        self.builtin = Model([*builtin_categories(), *flavour_mixins(flavours), *tags.values(),
                              *zone_mixins(self.site_scheme, backends.compute.zones()),
                              *pool_mixins(self.site_scheme, list(config.floating_ip_pools)),
                              *([monitoring] if monitoring else [])])
        self._models = ModelCache(self._build_model, backends.images.stamp)
        self.presence = Presence(store, config.lease_seconds)
        self.settings = Settings(
            site_scheme=self.site_scheme,
            default_sizes={"occi.compute.cores": default.cores,
                           "occi.compute.memory": float(default.memory)},
            max_page_size=config.max_page_size,
            default_page_size=min(config.default_page_size, config.max_page_size),
            max_entities_per_request=config.max_entities_per_request,
            backend_mixins=by_kind,
            monitoring_mixin=monitoring.type_id if monitoring else None,
            job_wait_seconds=config.job_wait_seconds,
            job_wait_max_seconds=config.job_wait_max_seconds,
            quotas=config.quotas,
            security_default_rules=tuple(parse_rules(config.security_default_rules)),
            floating_ip_pools=dict(config.floating_ip_pools),
            cimi_path=config.cimi_path,
            tenants=tuple(sorted({
                *config.oidc_tenants.values(), *config.x509_vos.values(),
                *(t for t in config.quotas if t != DEFAULT_TENANT),
                *(t for user in config.users.values() if isinstance(user, dict)
                  for t in user.get("tenants", []))})),
        )

    def model(self, repo: Repository) -> Model:
        """The model in force for `repo`'s audience (kept while it holds)."""
        return self._models.model(repo, repo.model_generation())

    def kept_model(self, generation: int, scope: Scope | None) -> Model | None:
        """The model in force for `scope` at a model generation, if one is kept
        (a GET answered from memory reads nothing else)."""
        return self._models.kept(generation, audience_of(scope))

    def _build_model(self, repo: Repository, now: datetime) -> tuple[Model, datetime | None]:
        """Built-in categories, images as os_tpl and image_tpl mixins, and the
        mixins created at run time; with the moment an endorsement ends."""
        # A saved image the catalogue lists is its tenant's alone: that tenant's
        # os_tpl comes from the store, the image_tpl of its volumes from the catalogue.
        run_time, hidden = repo.mixins()
        own = {mixin.type_id for mixin in run_time}
        images, entries = self.backends.images.images(), self.marketplace.all_entries(repo)
        published = [(image, marketplace, image_mixin(self.site_scheme, image, marketplace))
                     for image, marketplace
                     in self.marketplace.publishable(images, entries, now)]
        published = [entry for entry in published if entry[2].type_id not in hidden]
        return self.builtin.extended([
            *(os_tpl for _, _, os_tpl in published if os_tpl.type_id not in own),
            *(volume_image_mixin(self.site_scheme, image) for image, _, _ in published),
            *run_time]), next_change(images, entries, now)

    def vo_of(self, tenant: str) -> str:
        """The VO whose members act for a tenant (the tenant's name if none)."""
        return next((vo for vo, mapped in self.config.x509_vos.items() if mapped == tenant),
                    tenant)

    def glue(self, scope: Scope | None = None) -> dict[str, Any]:
        """The GLUE 2.1 description of this endpoint: a share per tenant (per
        tenant visible to `scope`)."""
        with self.store.transaction(write=False, scope=scope) as repo:
            model = self.model(repo)
            shares = []
            for tenant in visible_tenants(repo, self.settings.tenants):
                states = [e.attributes.get("occi.compute.state")
                          for e in repo.of_tenant(tenant) if e.kind == COMPUTE.type_id]
                shares.append(Share(
                    tenant=tenant, vo=self.vo_of(tenant),
                    limits=limits_of(self.settings.quotas, tenant),
                    vms={"total": len(states), "running": states.count("active"),
                         "suspended": states.count("suspended"),
                         "halted": states.count("inactive")}))
        return glue_document(model, site=self.config.effective_site_name,
                             endpoint=self.config.effective_endpoint_url,
                             methods=self.config.auth_methods, shares=shares,
                             backend=self.backends.compute.label)

    def accounting(self, start: datetime, end: datetime) -> list[dict[str, str]]:
        """APEL cloud records of the computes that existed between start and end."""
        site = Site(name=self.config.effective_site_name,
                    service=self.config.effective_endpoint_url,
                    cloud_type=f"occi-server/{__version__} ({self.backends.compute.name})",
                    vos={tenant: self.vo_of(tenant) for tenant in self._all_tenants()})
        with self.store.transaction(write=False) as repo:
            return cloud_records(repo, site, start, end)

    def _all_tenants(self) -> list[str]:
        with self.store.transaction(write=False) as repo:
            return visible_tenants(repo, self.settings.tenants)

    def quota_report(self, scope: Scope, tenant: str) -> dict[str, dict[str, Any]]:
        with self.store.transaction(write=False, scope=scope) as repo:
            if tenant not in visible_tenants(repo, self.settings.tenants):
                raise NotFound(f"no tenant {tenant} is visible to you")
            return report(repo, self.settings.quotas, tenant)

    # ------------------------------------------------------------ what operations read
    def health(self) -> dict[str, dict[str, str]]:
        """Each part checked now: the store, and every area's backend."""
        checks: dict[str, dict[str, str]] = {}
        try:
            with self.store.transaction(write=False) as repo:
                checks["store"] = {"status": "ok", "detail": f"{repo.count()} entities"}
        except OCCIError as exc:
            checks["store"] = {"status": "failing", "detail": exc.message}
        for kind, backend in self.backends.areas():
            try:
                checks[kind.term] = {"status": "ok", "detail": backend.health()}
            except Exception as exc:  # whatever the infrastructure raises, the check says it
                checks[kind.term] = {"status": "failing",
                                     "detail": getattr(exc, "message", None) or str(exc)}
        return checks

    def jobs(self, scope: Scope | None, *, state: str | None, limit: int) -> list[dict[str, Any]]:
        with self.store.transaction(write=False, scope=scope) as repo:
            return repo.jobs(state=state, limit=limit)

    def job(self, scope: Scope | None, job_id: str) -> dict[str, Any]:
        with self.store.transaction(write=False, scope=scope) as repo:
            found = repo.job(job_id)
        if found is None:
            raise NotFound(f"no job {job_id}")
        return found

    def guest_usage(self) -> dict[str, dict[str, Any]]:
        """Usage counters of every active guest (location -> counters), read from
        the hypervisor now; empty where the compute backend reports none."""
        compute = self.backends.compute
        if not compute.observes:
            return {}
        with self.store.transaction(write=False) as repo:
            guests = [guest for guest in repo.list(kinds=[COMPUTE.type_id])
                      if guest.attributes.get("occi.compute.state") == "active"]
        return {guest.location: compute.stats(guest) for guest in guests}

    def take_over_jobs(self) -> list[str]:
        """Jobs whose front end stopped (killed, or restarted): creates are
        finished where they can be, other entities get their real state back."""
        def finish(entity: Entity, operation: str) -> dict | None:
            backend = self.backends.for_kind(entity.kind)
            if backend is None:
                return None
            return backend.finish_create(entity) if operation == "creating" else \
                backend.current_state(entity)
        taken = take_over(self.store, finish, self.config.lease_seconds, self.presence)
        for location in taken:
            log.warning("the front end doing the job of %s stopped; this process took it over",
                        location)
        return taken

    @contextmanager
    def work(self, *, write: bool, local_path: Callable[[str], str],
             scope: Scope | None = None, wait: float | None = None) -> Iterator[Work]:
        """A unit of work in one transaction, on behalf of `scope` (None: the
        service itself). The infrastructure's part runs in the work's job after
        the commit, waited for up to `wait` seconds (default: job_wait_seconds);
        a failure it ends with while the request waits is raised."""
        with self.store.transaction(write=write, scope=scope) as repo:
            generations = repo.generations()
            work = Work(repo, self._models.model(repo, generations.model), self.backends,
                        self.settings, local_path, self.store, generations)
            yield work
            work.quota.confirm()
        if write:
            checkpoint("write.committed")
        if work.job is not None:
            run_job(self.store, work.job,
                    self.settings.job_wait_seconds if wait is None else wait, self.presence)


class Reconciler:
    """Brings stored compute and network states in line with what the
    infrastructure reports (restarting what should run, such as DHCP servers)
    and takes over the jobs of front ends that stopped, every `interval`
    seconds, in one process of the whole site at a time: the holder of the
    store's `reconciler` lease, which another takes once it expires."""

    LEASE = "reconciler"

    def __init__(self, service: Service, interval: float,
                 orphans: str = "report", orphan_grace: float = 600) -> None:
        self.service = service
        self.interval = interval
        # Renewed every pass: its holder must miss two before another takes it.
        self.lease_seconds = 2 * interval + service.config.lease_seconds
        self.orphan_policy = orphans
        self.orphan_grace = orphan_grace
        self._orphans_seen: dict[tuple[str, str], float] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _areas(self) -> list[tuple[Kind, Backend]]:
        return [(kind, backend) for kind, backend in self.service.backends.areas()
                if backend.observes]

    def audit(self, *, startup: bool = False) -> list[str]:
        """Orphans (real objects no entity accounts for) are reported, removed or
        adopted as configured, once seen for `orphan_grace` seconds (a create
        still in progress in another worker has not committed yet); at start-up,
        when nothing is in progress, at once. Returns what was done."""
        return self._audit(self._known(), startup)

    def _known(self) -> dict[str, list[Entity]]:
        with self.service.store.transaction(write=False) as repo:
            return {kind.term: repo.list(kinds=[kind.type_id]) for kind, _ in self._areas()}

    def _audit(self, known: dict[str, list[Entity]], startup: bool) -> list[str]:
        # The infrastructure is listed with no transaction open: a host that
        # does not answer holds up no request meanwhile.
        now, due, still = time.monotonic(), [], set()
        for kind, backend in self._areas():
            try:
                names = backend.orphans(known[kind.term])
            except BackendUnavailable as exc:
                log.warning("orphaned %s not looked for: %s", kind.term, exc.message)
                continue
            for name in names:
                still.add((kind.term, name))
                first = self._orphans_seen.setdefault((kind.term, name), now)
                if startup or now - first >= self.orphan_grace:
                    due.append((kind, backend, name))
        self._orphans_seen = {k: v for k, v in self._orphans_seen.items() if k in still}
        if not due:
            return []
        with self.service.store.transaction(write=True) as repo:
            return [self._handle_orphan(repo, kind, backend, name)
                    for kind, backend, name in due]

    def _handle_orphan(self, repo: Repository, kind: Kind, backend: Backend, name: str) -> str:
        if self.orphan_policy == "adopt":
            entity = backend.adopt_orphan(name)
            if entity is not None and not any((repo.get(entity.id),
                                               repo.by_location(entity.location),
                                               repo.by_key(entity.key))):
                entity.mixins = server_mixins(self.service.settings, kind)
                repo.insert(entity)
                log.warning("adopted %s %s as %s", kind.term, name, entity.location)
                return f"adopted {name} as {entity.location}"
        if self.orphan_policy == "clean":
            backend.discard_orphan(name)
            log.warning("removed %s %s, which no %s accounts for", kind.term, name, kind.term)
            return f"removed {name}"
        log.warning("%s %s is not in the store (orphans = %s: left alone)", kind.term, name,
                    self.orphan_policy)
        return f"reported {name}"

    def elected(self) -> bool:
        """Whether this process reconciles now (taking or renewing the lease)."""
        try:
            with self.service.store.transaction(write=True) as repo:
                return repo.hold_lease(self.LEASE, holder_id(), self.lease_seconds)
        except OCCIError as exc:
            log.info("reconciler election postponed: %s", exc.message)
            return False

    def run_once(self) -> int:
        """One pass (interrupted jobs, orphans, then states); returns how many
        entities changed."""
        changed = len(self.service.take_over_jobs())
        store = self.service.store
        known = self._known()
        self._audit(known, startup=False)
        # The infrastructure is asked with no transaction open; what it says is
        # stored only where no request or job changed the entity meanwhile.
        seen = []
        for kind, backend in self._areas():
            for entity in known[kind.term]:
                if entity.attributes.get(state_attribute(entity)) == "waiting":
                    continue  # its job decides
                try:
                    real = reported(entity, backend.current_state(entity))
                except BackendUnavailable:
                    continue  # e.g. its host does not answer: the others go on
                if any(entity.attributes.get(k) != v for k, v in real.items()):
                    entity.attributes.update(real)
                    seen.append(entity)
        with store.transaction(write=True) as repo:
            changed += sum(repo.update_unless_changed(entity) for entity in seen)
            if self.service.backends.network.observes:
                changed += repair_guards(repo, self.service.backends,
                                         self.service.settings.security_default_rules)
                changed += repair_published(repo, self.service.backends)
        return changed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="occi-reconcile", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.service.backends.compute.watch(self._wake.set)
            self._wake.wait(self.interval)  # a lifecycle event ends the wait early
            self._wake.clear()
            if self._stop.is_set() or not self.elected():
                continue  # another process reconciles
            try:
                changed = self.run_once()
                if changed:
                    log.info("reconciled the state of %d resource(s) with the "
                             "infrastructure", changed)
            except BackendUnavailable as exc:  # e.g. a long request holds the database
                log.info("reconciliation postponed: %s", exc.message)
            except Exception:
                log.exception("reconciliation failed; retrying in %s s", self.interval)
        try:  # another front end need not wait for the lease to expire
            with self.service.store.transaction(write=True) as repo:
                repo.release_lease(self.LEASE, holder_id())
        except OCCIError:
            pass
