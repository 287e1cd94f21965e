"""One request's operations on entities, inside one store transaction.

Validates everything against the model and the store first, then stores the
entities `waiting` and leaves the infrastructure's part (creates, actions,
deletes, attaches) to the request's job, which runs after the commit: no
write lock is held while the infrastructure works, and a refused request
changes nothing. A backend failure is recorded on the entity (state `error`
plus message) and reported to a client still waiting for it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from occi_server.backends.base import Backends
from occi_server.core import Action, Entity, Kind, Mixin, Model
from occi_server.core.model import RESOURCE
from occi_server.core.specs import ActionSpec, EntitySpec, Filter, LinkSpec
from occi_server.errors import (
    BackendFailure,
    BackendUnavailable,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    OCCIError,
    PayloadTooLarge,
)
from occi_server.errors import InternalError as OperationFailed
from occi_server.faults import checkpoint
from occi_server.images import Image
from occi_server.kinds.infrastructure import COMPUTE, RESOURCE_TPL, SHARED
from occi_server.kinds.rules import Rule
from occi_server.metrics import BACKEND_ERRORS
from occi_server.service.jobs import (
    Job,
    Step,
    busy_with,
    error_state,
    reported,
    state_attribute,
    state_attribute_of,
    state_of,
)
from occi_server.service.observation import OBSERVATIONS
from occi_server.service.presence import holder_id
from occi_server.service.quotas import QuotaCheck, quota_entity, visible_tenants
from occi_server.service.rooms import LINK_ROOMS, ROOMS, LinkRoom, link_room, room_of
from occi_server.service.validation import (
    check_entity_id,
    check_required,
    coerce_attributes,
    is_creation_only,
    resolve_mixins,
    template_family,
)
from occi_server.store import Generations, Position, Repository, Store

log = logging.getLogger("occi_server.service")

QUERY_PATHS = ("/-/", "/-", "/.well-known/org/ogf/occi/-/", "/.well-known/org/ogf/occi/-")


@dataclass(frozen=True)
class Settings:
    site_scheme: str
    default_sizes: dict[str, Any]
    max_page_size: int
    backend_mixins: dict[str, str]  # kind -> the managed mixin naming its backend
    monitoring_mixin: str | None  # set when the compute backend reports usage
    job_wait_seconds: float = 10.0  # how long a request waits for its job
    job_wait_max_seconds: float = 300.0  # the longest a client may ask it to (Prefer: wait)
    default_page_size: int = 1000  # members listed without page or number (0: all)
    max_entities_per_request: int = 100  # entities (and their links) one request creates
    # Tenant -> quota -> limit; the "default" entry applies to every tenant.
    quotas: dict[str, dict[str, float]] = field(default_factory=dict)
    tenants: tuple[str, ...] = ()  # the tenants the configuration names
    security_default_rules: tuple[Rule, ...] = ()  # of a compute in no security group
    floating_ip_pools: dict[str, str] = field(default_factory=dict)  # name -> CIDR
    cimi_path: str = "/cimi/"  # where the CIMI interface is: no user mixin lives there


class Work:
    def __init__(self, repo: Repository, model: Model, backends: Backends,
                 settings: Settings, local_path: Any, store: Store,
                 generations: Generations) -> None:
        self.repo = repo
        self.generations = generations  # as the transaction began
        self.store = store  # what a job reads after the request's transaction has ended
        self.model = model
        self.backends = backends
        self.settings = settings
        self.local_path = local_path  # location or URL -> path on this server
        # The infrastructure's work of this request's creates, run after the commit.
        self.job: Job | None = None
        # Worked out once per request for the many entities a listing renders.
        self._legal: dict[tuple[str, tuple[str, ...], Any], list[str]] = {}
        self._machines: dict[str, tuple[Kind, Any]] = {}  # kind and state machine, by kind id
        self.quota = QuotaCheck(repo, settings.quotas)

    # ------------------------------------------------------------ tenants
    def changeable(self, entities: Sequence[Entity]) -> list[Entity]:
        """The entities this request may change: what acts on a whole collection
        leaves other tenants' shared entities alone."""
        scope = self.repo.scope
        if scope is None or scope.everything:
            return list(entities)
        return [entity for entity in entities if entity.tenant == scope.tenant]

    def _writable(self, entity: Entity) -> None:
        """Another tenant's shared entity can be seen and linked to, not changed."""
        if not self.changeable([entity]):
            raise Forbidden(f"{entity.location} is shared with every tenant by the site; only "
                            "its own tenant or an operator can change it")

    def _may_share(self, mixins: Sequence[str]) -> None:
        scope = self.repo.scope
        if SHARED.type_id in mixins and scope is not None and not scope.everything:
            raise Forbidden(f"only operators can share resources ({SHARED.type_id})")

    # ------------------------------------------------------------ paths
    def at(self, path: str) -> Entity | None:
        """The entity at `path`, if this request's scope sees it."""
        return self.repo.by_location(path)

    def taken(self, path: str) -> bool:
        """Whether any tenant's entity is at `path` (seen or not)."""
        return self.repo.everywhere().by_location(path) is not None

    def quota_of(self, tenant: str) -> Entity | None:
        """A tenant's quotas and usage, if this request's scope sees the tenant."""
        if tenant not in visible_tenants(self.repo, self.settings.tenants):
            return None
        return quota_entity(self.repo, self.settings.quotas, tenant)

    def quotas(self) -> list[Entity]:
        return [quota_entity(self.repo, self.settings.quotas, tenant)
                for tenant in visible_tenants(self.repo, self.settings.tenants)]

    def entity_at(self, reference: str, what: str) -> Entity:
        path = self.local_path(reference)
        entity = self.repo.by_location(path) if "://" not in path else None
        if entity is None:
            raise BadRequest(f"{what} {reference} does not exist on this server")
        return entity

    # ------------------------------------------------------------ reading
    def kind_of(self, entity: Entity) -> Kind:
        kind = self.model.kind(entity.kind)
        if kind is None:
            raise OperationFailed(f"{entity.location} has unknown kind {entity.kind}")
        return kind

    def legal_actions(self, entity: Entity) -> list[str]:
        known = self._machines.get(entity.kind)
        if known is None:
            kind = self.kind_of(entity)
            known = self._machines[entity.kind] = (kind, self.model.state_machine(kind))
        kind, machine = known
        state = entity.attributes.get(machine.attribute) if machine else None
        key = (entity.kind, tuple(entity.mixins), state)
        legal = self._legal.get(key)
        if legal is None:
            legal = self._legal[key] = [
                a.type_id for a in self.model.actions_of(kind, entity.mixins)
                if machine is None or machine.allowed(a.term, state)]
        return list(legal)

    def detailed(self, entities: Sequence[Entity]) -> list[Entity]:
        """Entities with their outgoing links and applicable actions filled in."""
        resources = [e for e in entities if not e.is_link]
        links = self.repo.links_from([e.id for e in resources])
        for entity in resources:
            entity.links = links[entity.id]
        return self.with_actions(entities)

    def with_actions(self, entities: Sequence[Entity]) -> list[Entity]:
        """Entities (and the links they hold) with their applicable actions
        filled in: those this request created have every link they have."""
        for entity in entities:
            entity.actions = self.legal_actions(entity)
            for link in entity.links:
                link.actions = self.legal_actions(link)
        return list(entities)

    def is_live(self, entity: Entity) -> bool:
        """Whether `entity` is shown as its infrastructure reports it at the
        moment, not as stored (see `observed`)."""
        return entity.kind == COMPUTE.type_id and self.backends.compute.observes

    def observed(self, entity: Entity) -> Entity:
        """A compute as the hypervisor sees it now: real state and usage
        counters (rendered, not stored; the reconciler stores states), asked
        within a bound (see observation.py): a state that came in time is
        shown though its counters did not."""
        if not self.is_live(entity):
            return entity
        compute = self.backends.compute
        waiting = entity.attributes.get("occi.compute.state") == "waiting"  # a job's to say
        asked = replace(entity, attributes=dict(entity.attributes))  # the asking thread's own
        told: dict[str, dict[str, Any]] = {}  # each part set whole, as it comes

        def ask() -> bool:
            try:
                if not waiting:
                    told["state"] = reported(asked, compute.current_state(asked))
                told["counters"] = compute.stats(asked)
            except BackendUnavailable:
                pass  # its hypervisor does not answer: the stored state is the last known
            return True

        try:
            answered = OBSERVATIONS.within(ask)
        except BackendUnavailable:
            return entity
        state = told.get("state")
        if answered is None and state is None and not waiting:
            state = reported(entity, error_state(
                "occi.compute.state", "its hypervisor does not answer within "
                f"{OBSERVATIONS.seconds:g} s; the guest is kept and shows its real "
                "state again once it does"))
        entity.attributes.update(state or {})
        entity.attributes.update(told.get("counters", {}))
        return entity

    def console(self, entity: Entity) -> str:
        text = self.backends.compute.console(entity) if entity.kind == COMPUTE.type_id else None
        if text is None:
            raise NotFound(f"{entity.location} has no console log")
        return text

    def listing(self, collection: Kind | Mixin | None, path: str, query: Filter,
                page: int | None, number: int | None, *, light: bool = False
                ) -> tuple[list[Entity], int | None]:
        """The page of a collection a client asked for (without page or number:
        the first `default_page_size` members), and the next page's number if
        there are more members. The database selects the members a filter's
        kinds and mixins name, and pages them unless actions or attribute
        values are filtered on too (those are matched here, over every member
        the database gave); `light` members carry where they are only (for
        renderings that list locations)."""
        whole = self.whole_collection(page, number)
        size = number or self.settings.default_page_size or self.settings.max_page_size
        page = page or 1
        start = (page - 1) * size
        selection = self._selection(collection, path, query)
        if selection is None:
            return [], None
        narrowed, rest = selection
        if rest:
            found = self._passing(narrowed, rest)
            if whole:
                return found, None
            return found[start:start + size], page + 1 if len(found) > start + size else None
        if whole:
            return self.repo.list(**narrowed, light=light), None
        found = self.repo.list(**narrowed, offset=start, limit=size + 1, light=light)
        return found[:size], page + 1 if len(found) > size else None

    def whole_collection(self, page: int | None, number: int | None) -> bool:
        """Whether a listing asks for every member: no page, no number, no default page."""
        return page is None and number is None and not self.settings.default_page_size

    def chunk(self, kind: Kind, after: Position | None, size: int
              ) -> tuple[list[Entity], Position | None]:
        """The next members of a kind's collection after a position (a
        collection sent in pieces, each read in a transaction of its own)."""
        found, last = self.repo.chunk(after=after, limit=size, kinds=self._kinds(kind))
        return self.detailed(found), last

    def location_chunk(self, kind: Kind, after: Position | None, size: int
                       ) -> tuple[bytes, Position | None]:
        """The locations of a kind's next members after a position, one a line,
        UTF-8 encoded (a location list sent in pieces)."""
        return self.repo.location_chunk(after=after, limit=size, kinds=self._kinds(kind))

    def members(self, collection: Kind | Mixin | None, path: str,
                query: Filter) -> list[Entity]:
        """Every member of a kind's or mixin's collection (None: of everything
        under `path`) that `query` selects."""
        selection = self._selection(collection, path, query)
        return [] if selection is None else self._passing(*selection)

    def _passing(self, narrowed: dict[str, Any], rest: Filter) -> list[Entity]:
        """Every entity the database selects (`narrowed`) that passes the rest of a filter."""
        return [e for e in self.repo.list(**narrowed) if self._matches(e, rest)]

    def _selection(self, collection: Kind | Mixin | None, path: str, query: Filter
                   ) -> tuple[dict[str, Any], Filter] | None:
        """What the database selects of a collection a filter narrows (the
        arguments of `repo.list`: the kinds a member's kind is among, the mixin
        families it carries one of each of, or the path it is under), and what
        is left of the filter to match here: actions (they follow the state) and
        attribute values. None: a category that nothing can match."""
        kinds = [self._kinds(collection)] if isinstance(collection, Kind) else []
        families = [self.mixin_family(collection)] if isinstance(collection, Mixin) else []
        actions = []
        for spec in query.categories:
            category = self.model.get(spec.type_id)
            if isinstance(category, Kind):
                kinds.append(self._kinds(category))
            elif isinstance(category, Mixin):
                families.append(self.mixin_family(category))
            elif isinstance(category, Action):
                actions.append(spec)
            else:
                return None
        narrowed: dict[str, Any] = {"mixin_families": families}
        if kinds:
            narrowed["kinds"] = [k for k in kinds[0] if all(k in other for other in kinds[1:])]
        if collection is None:
            narrowed["location_prefix"] = path
        return narrowed, Filter(actions, query.attributes)

    def _kinds(self, kind: Kind) -> list[str]:
        """The kind and every kind below it (a kind's collection holds them all)."""
        return [k.type_id for k in self.model.descendant_kinds(kind)]

    def mixin_family(self, mixin: Mixin) -> list[str]:
        """The mixin and every mixin that depends on it (its collection's members carry one)."""
        return [m.type_id for m in self.model.mixins() if self.model.is_mixin_of(m.type_id,
                                                                                  mixin.type_id)]

    def _matches(self, entity: Entity, rest: Filter) -> bool:
        """Whether an entity the database selected passes what is left of a
        filter (see `_selection`): its actions' categories and attribute values."""
        legal = self.legal_actions(entity) if rest.categories else []
        return all(spec.type_id in legal for spec in rest.categories) and all(
            _same_value(entity.attributes.get(name), value)
            for name, value in rest.attributes.items())

    # ------------------------------------------------------------ create
    def create(self, collection: Kind, specs: Sequence[EntitySpec],
               entity_id: str | None = None) -> list[Entity]:
        if not specs:
            raise BadRequest(f"the request carries no entity to create; send at least "
                             f"Category: {collection.term}; scheme=\"{collection.scheme}\"; "
                             'class="kind"')
        count = sum(1 + len(spec.links) for spec in specs)
        if count > self.settings.max_entities_per_request:
            raise PayloadTooLarge(f"the request would create {count} entities; this server "
                                  f"takes at most {self.settings.max_entities_per_request} in "
                                  "one request")
        # Nothing of the infrastructure exists before the transaction commits
        # (the job creates it), so a refusal here needs no undoing.
        return [self._create_one(collection, spec, entity_id) for spec in specs]

    def _create_one(self, collection: Kind, spec: EntitySpec, entity_id: str | None) -> Entity:
        if spec.kind is None:
            raise BadRequest(f"the rendering names no kind; add Category: {collection.term}; "
                             f'scheme="{collection.scheme}"; class="kind"')
        kind = self.model.kind(spec.kind)
        if kind is None:
            raise BadRequest(f"unknown kind {spec.kind}; GET /-/ lists the kinds offered")
        if not self.model.is_kind_of(kind.type_id, collection.type_id):
            raise BadRequest(f"a {kind.term} cannot be created in {collection.location}; "
                             f"POST it to {kind.location}")
        if kind.type_id not in ROOMS:
            raise BadRequest(f"{kind.term} is abstract here; create one of "
                             + ", ".join(kind.split("#")[1] for kind in ROOMS))
        if self.model.is_link_kind(kind.type_id):
            if spec.links:
                raise BadRequest("a link cannot carry links")
            return self._create_link(LinkSpec(
                target=spec.target, kind=spec.kind, mixins=spec.mixins,
                attributes=spec.attributes, target_kind=spec.target_kind, source=spec.source,
            ), source=None, entity_id=entity_id)
        mixins = resolve_mixins(self.model, kind, spec.mixins)
        room = room_of(kind.type_id)
        room.check_mixins(self, mixins, spec.attributes)
        new_id = self._new_id(spec.attributes, entity_id)
        entity = Entity(id=new_id, kind=kind.type_id, location=f"{kind.location}{new_id}",
                        mixins=[m.type_id for m in mixins])
        entity.attributes = self._initial_attributes(kind, mixins, spec.attributes, new_id)
        room.check_new(self, entity)
        self._may_share(entity.mixins)
        self.quota.admit(entity)
        self._provision(kind, entity)
        self.repo.insert(entity)
        for link_spec in spec.links:
            entity.links.append(self._create_link(link_spec, source=entity))
        return entity

    def _new_id(self, attributes: dict[str, Any], entity_id: str | None) -> str:
        proposed = attributes.get("occi.core.id")
        if entity_id is not None and proposed is not None and str(proposed) != entity_id:
            raise BadRequest(f"occi.core.id {proposed} differs from the id in the path "
                             f"({entity_id})")
        if not (entity_id or proposed):  # drawn here: no other entity has it
            return str(uuid.uuid4())
        new_id = check_entity_id(entity_id or proposed)
        if self.repo.everywhere().get(new_id) is not None:
            raise Conflict(f"an entity with id {new_id} already exists")
        return new_id

    def _initial_attributes(self, kind: Kind, mixins: list[Mixin], given: dict[str, Any],
                            entity_id: str) -> dict[str, Any]:
        definitions = self.model.attributes(kind, [m.type_id for m in mixins])
        # Server-managed values (state, …) that clients echo on create are ignored.
        settable = {n: v for n, v in given.items() if n != "occi.core.id" and (
            n not in definitions or definitions[n].mutable or definitions[n].required)}
        values = coerce_attributes(definitions, settable, what=f"a {kind.term}")
        attributes = {n: d.default for n, d in definitions.items() if d.default is not None}
        attributes.update({n: v for n, v in values.items() if v is not None})
        templates = [m for m in mixins if template_family(self.model, m) == RESOURCE_TPL.type_id]
        for template in templates:  # a template's sizes win over the client's
            for attribute in self.model.mixin_attributes(template):
                if attribute.default is not None:
                    attributes[attribute.name] = attribute.default
        room_of(kind.type_id).defaults(self, attributes, templated=bool(templates))
        attributes["occi.core.id"] = entity_id
        check_required(definitions, attributes, what=f"a {kind.term}")
        return attributes

    def _provision(self, kind: Kind, entity: Entity) -> None:
        """Store the new resource as `waiting`; its job creates the infrastructure."""
        entity.mixins.extend(t for t in self.server_mixins(kind) if t not in entity.mixins)
        self.defer(entity, f"creating {entity.location}",
                   lambda: self._provisioned(kind, entity),
                   lambda: self._destroy(kind, entity))

    def _provisioned(self, kind: Kind, entity: Entity) -> dict[str, Any]:
        """Create the infrastructure behind a new resource (in its job). A
        refusal leaves the entity in state `error` with the backend's message."""
        result = self.or_error(kind, lambda: room_of(kind.type_id).provision(self, entity))
        checkpoint("create.provisioned")
        return result

    def or_error(self, kind: Kind, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """What the infrastructure answers, or the entity's `error` state if it fails."""
        try:
            return call()
        except BackendFailure as exc:
            return self._error_state(kind, exc)

    def defer(self, entity: Entity, description: str, run: Callable[[], dict[str, Any]],
               undo: Callable[[], None], restore: dict[str, Any] | None = None,
               finish: Callable[[Repository], None] | None = None,
               failure: Callable[[str], OCCIError] | None = None,
               after_others: bool = False, restore_mixins: list[str] | None = None) -> None:
        """Mark the entity `waiting` and leave the work to this request's job.
        `restore`: what the entity goes back to if the infrastructure refuses
        (an action's); without it a refusal removes the new entity (a create's).
        `failure`: the answer when the infrastructure fails the entity meanwhile."""
        state = state_attribute(entity)
        entity.attributes[state] = "waiting"
        entity.attributes[f"{state}.message"] = description
        if self.job is None:
            self.job = Job(entity, description.split(" ", 1)[0])
            self.repo.insert_job(self.job.id, entity, self.job.operation, description,
                                 holder=holder_id())
        self.job.steps.append(Step(entity, description, run, undo, restore, finish, failure,
                                   after_others, restore_mixins))

    def server_mixins(self, kind: Kind) -> list[str]:
        return server_mixins(self.settings, kind)

    def _error_state(self, kind: Kind, exc: BackendFailure) -> dict[str, Any]:
        """What an entity shows when the infrastructure failed it (and counted)."""
        BACKEND_ERRORS.labels(kind.term).inc()
        return error_state(state_attribute_of(kind.type_id), str(exc))

    def image(self, entity: Entity, family: str) -> Image | None:
        """The catalogue image a compute boots (os_tpl) or a volume is cloned from (image_tpl)."""
        for mixin_id in entity.mixins:
            mixin = self.model.mixin(mixin_id)
            if mixin is None or template_family(self.model, mixin) != family:
                continue
            return self.backends.images.find(mixin.term) or Image(
                term=mixin.term, title=mixin.title, info=dict(mixin.info))
        return None

    # ------------------------------------------------------------ links
    def _create_link(self, spec: LinkSpec, source: Entity | None,
                     entity_id: str | None = None) -> Entity:
        attributes = dict(spec.attributes)
        given_source = spec.source or attributes.pop("occi.core.source", None)
        given_target = spec.target or attributes.pop("occi.core.target", None)
        attributes.pop("occi.core.source", None)
        attributes.pop("occi.core.target", None)
        attributes.pop("occi.core.target.kind", None)
        if source is None:
            if not given_source:
                raise BadRequest("a link needs occi.core.source (the resource it starts from)")
            source = self.entity_at(str(given_source), "source")
            self._writable(source)
        elif given_source and self.local_path(str(given_source)) != source.location:
            raise BadRequest(f"an inline link starts at {source.location}, not {given_source}")
        if not given_target:
            raise BadRequest("a link needs occi.core.target (the resource it leads to)")
        target = self.entity_at(str(given_target), "target")
        room = self._link_room(spec.kind, target)
        kind = room.kind
        if source.kind != room.source_kind.type_id or target.kind != room.target_kind.type_id:
            raise BadRequest(f"a {kind.term} joins a {room.source_kind.term} to a "
                             f"{room.target_kind.term}, not {source.location} to "
                             f"{target.location}")
        if spec.target_kind and spec.target_kind not in (target.kind, RESOURCE):
            raise BadRequest(f"rel names {spec.target_kind} but {target.location} is a "
                             f"{target.kind}")
        mixin_ids = list(spec.mixins)
        mixin_ids += [m for m in room.implied_mixins(target) if m not in mixin_ids]
        mixins = resolve_mixins(self.model, kind, mixin_ids)
        new_id = self._new_id(attributes, entity_id)
        link = Entity(id=new_id, kind=kind.type_id, location=f"{kind.location}{new_id}",
                      mixins=[m.type_id for m in mixins], source=source.location,
                      target=target.location, target_kind=target.kind)
        attributes["occi.core.source"] = source.location
        attributes["occi.core.target"] = target.location
        attributes["occi.core.target.kind"] = target.kind
        link.attributes = self._initial_attributes(kind, mixins, attributes, new_id)
        link.attributes.update({"occi.core.source": source.location,
                                "occi.core.target": target.location,
                                "occi.core.target.kind": target.kind})
        siblings = [s for s in self.repo.links_from([source.id])[source.id]
                    if s.kind == kind.type_id]
        room.plan(self, link, target, siblings)
        self.quota.admit(link, target)
        self.defer(link, f"attaching {target.location} to {source.location}",
                   lambda: self.or_error(kind, lambda: room.plug(self, link, source, target)),
                   lambda: room.unplug(self, link, source, target))
        self.repo.insert(link, source_id=source.id, target_id=target.id)
        link.actions = self.legal_actions(link)
        return link

    def _link_room(self, kind_id: str | None, target: Entity) -> LinkRoom:
        """The room of the link kind named (or of the one that leads to `target`)
        for links to `target`'s kind; when that kind of link leads elsewhere, a
        room of the kind (whose check then says where it leads)."""
        if kind_id is None:
            found = link_room(None, target.kind)
            if found is None:
                raise BadRequest(f"name the kind of the link to {target.location}")
            return found
        kind = self.model.kind(kind_id)
        if kind is None or not self.model.is_link_kind(kind_id):
            raise BadRequest(f"{kind_id} is not a link kind")
        found = link_room(kind_id, target.kind) or next(
            (room for (link_kind, _), room in LINK_ROOMS.items() if link_kind == kind_id), None)
        if found is None:
            raise BadRequest(f"{kind.term} is abstract here; create a " + " or ".join(
                sorted({room.kind.term for room in LINK_ROOMS.values()})))
        return found

    # ------------------------------------------------------------ delete
    def delete(self, entity: Entity) -> None:
        self.delete_all([entity])

    def delete_all(self, entities: Sequence[Entity]) -> None:
        """Delete entities: every one is checked before any is touched, then each
        is stored `waiting` and its job tears the infrastructure down and removes
        the record (a refusal leaves all of them as they were)."""
        going = {entity.id for entity in entities}
        for entity in entities:
            self._writable(entity)
            if entity.is_link:
                continue
            for link in self.repo.links_to(entity.id):
                source = self.repo.by_location(link.source or "")
                if link.source != entity.location and link.id not in going and (
                        source is None or source.id not in going):
                    raise Conflict(f"{entity.location} is in use by {link.source} through "
                                   f"{link.location}; delete that link first"
                                   + ("; nothing was deleted" if len(entities) > 1 else ""))
        # Links first: a resource's teardown then finds none of them plugged in.
        for entity in sorted(entities, key=lambda e: not e.is_link):
            self._plan_delete(entity)

    def _plan_delete(self, entity: Entity) -> None:
        kind = self.kind_of(entity)
        if entity.attributes.get(state_attribute(entity)) == "waiting" \
                and busy_with(self.repo, entity.id, "creating"):
            # Cancelled: its create job finds the record gone and undoes its work.
            self.repo.delete(entity.id)
            return
        before = state_of(entity)
        if entity.is_link:
            source = self.repo.by_location(entity.source or "")
            target = self.repo.by_location(entity.target or "")

            def teardown() -> None:
                self._detach(entity, source, target)
        else:
            links = [(link, self.repo.by_location(link.target or ""))
                     for link in self.repo.links_from([entity.id])[entity.id]]

            def teardown() -> None:
                for link, target in links:
                    self._detach(link, entity, target)
                self._destroy(kind, entity)
                checkpoint("delete.destroyed")

        def run() -> dict[str, Any]:
            try:
                teardown()
            except BackendFailure as exc:
                return self._error_state(kind, exc)
            return {}

        def gone(repo: Repository) -> None:
            repo.delete(entity.id)

        self.defer(entity, f"deleting {entity.location}", run, lambda: None, restore=before,
                   finish=gone, after_others=True, failure=lambda why: OperationFailed(
                       f"the infrastructure could not delete {entity.location}: {why}; it is "
                       "kept in state error"))
        self.repo.update(entity, mixins=False)

    def _detach(self, link: Entity, source: Entity | None, target: Entity | None) -> None:
        room = link_room(link.kind, link.target_kind or "")
        if source is not None and room is not None:
            room.unplug(self, link, source, target)

    def _destroy(self, kind: Kind, entity: Entity) -> None:
        backend = self.backends.for_kind(kind.type_id)
        if backend is not None:
            backend.delete(entity)

    # ------------------------------------------------------------ update
    def update(self, entity: Entity, spec: EntitySpec, *, full: bool) -> Entity:
        """POST (full=False: only what is given changes) or PUT (full=True:
        the rendering replaces mixins and mutable attributes; links stay)."""
        self._writable(entity)
        kind = self.kind_of(entity)
        if spec.kind is not None and spec.kind != entity.kind:
            raise BadRequest(f"the kind of {entity.location} cannot change "
                             f"(it is {entity.kind})")
        if entity.is_link and spec.links:
            raise BadRequest("a link cannot carry links")
        new_links = self._links_to_create(entity, spec.links, full=full)
        mixins = self._merged_mixins(kind, entity, spec.mixins, full=full)
        attributes = self._updated_attributes(kind, entity, mixins, spec.attributes, full=full)
        changes = {n: v for n, v in attributes.items() if entity.attributes.get(n) != v}
        changes.update({n: None for n in entity.attributes if n not in attributes})
        if SHARED.type_id in mixins and SHARED.type_id not in entity.mixins:
            self._may_share(mixins)
        self.quota.admit(replace(entity, mixins=mixins, attributes=attributes), was=entity)
        before = replace(entity, mixins=list(entity.mixins), attributes=dict(entity.attributes))
        entity.mixins = mixins
        entity.attributes = attributes
        room_of(kind.type_id).check_change(self, entity, changes)
        self._change(kind, entity, changes, before)
        self.repo.update(entity)
        for link_spec in new_links:
            self._create_link(link_spec, source=entity)
        return entity

    def _links_to_create(self, entity: Entity, specs: list[LinkSpec], *, full: bool
                         ) -> list[LinkSpec]:
        """The links in an update that are new. Echoes of existing links (by
        location or id, and on PUT also by target) are not."""
        if not specs:
            return []
        existing = self.repo.links_from([entity.id])[entity.id]
        known = {link.location for link in existing} | {link.id for link in existing}
        targets = {link.target for link in existing}

        def echoed(spec: LinkSpec) -> bool:
            if spec.self_location and self.local_path(spec.self_location) in known:
                return True
            if str(spec.attributes.get("occi.core.id")) in known:
                return True
            return full and bool(spec.target) and self.local_path(str(spec.target)) in targets

        fresh = [spec for spec in specs if not echoed(spec)]
        if fresh and full:
            raise BadRequest("PUT keeps the links of a resource as they are; create new links "
                             "with POST on the resource or on a link collection")
        return fresh

    def _merged_mixins(self, kind: Kind, entity: Entity, requested: list[str], *,
                       full: bool) -> list[str]:
        # Server-managed mixins a client echoes back are not the client's to give.
        wanted = resolve_mixins(self.model, kind, [
            m for m in requested if not (self.model.mixin(m) and self.model.mixin(m).managed)])
        # A full update starts from the mixins it cannot remove.
        kept = [m for m in entity.mixins if not full or self._fixed(m)]
        for mixin in wanted:
            if mixin.type_id in kept:
                continue
            if is_creation_only(self.model, mixin):
                raise BadRequest(f"{mixin.type_id} can only be given when the {kind.term} is "
                                 "created")
            family = template_family(self.model, mixin)
            if family is not None:
                kept = [m for m in kept if not self.model.is_mixin_of(m, family)]
            kept.append(mixin.type_id)
        return kept

    def _fixed(self, mixin_id: str) -> bool:
        """Mixins a full update cannot remove: server-managed and creation-only."""
        mixin = self.model.mixin(mixin_id)
        return mixin is None or mixin.managed or is_creation_only(self.model, mixin)

    def _updated_attributes(self, kind: Kind, entity: Entity, mixins: list[str],
                            given: dict[str, Any], *, full: bool) -> dict[str, Any]:
        definitions = self.model.attributes(kind, mixins)
        mutable: dict[str, Any] = {}
        for name, value in given.items():
            definition = definitions.get(name)
            if name == "occi.core.id":
                if str(value) != entity.id:
                    raise BadRequest("occi.core.id cannot change")
            elif definition is not None and not definition.mutable:
                if value is not None and _coerced(definition, value) != entity.attributes.get(
                        name):
                    raise BadRequest(f"{name} is set by the server and cannot be changed")
            else:
                mutable[name] = value
        values = coerce_attributes(definitions, mutable, what=f"a {kind.term}")
        attributes = {n: v for n, v in entity.attributes.items() if n in definitions}
        if full:
            for name, definition in definitions.items():
                if definition.mutable and name not in values:
                    attributes.pop(name, None)
                    if definition.default is not None:
                        attributes[name] = definition.default
        for name, value in values.items():
            if value is None:
                attributes.pop(name, None)
            else:
                attributes[name] = value
        added = [self.model.mixin(m) for m in mixins if m not in entity.mixins]
        for template in added:
            if template and template_family(self.model, template) == RESOURCE_TPL.type_id:
                for attribute in self.model.mixin_attributes(template):
                    if attribute.default is not None:
                        attributes[attribute.name] = attribute.default
        check_required(definitions, attributes, what=f"a {kind.term}")
        return attributes

    def _change(self, kind: Kind, entity: Entity, changes: dict[str, Any],
                before: Entity) -> None:
        """Have the infrastructure take changed attributes (a resize, new addresses)
        in the request's job; a refusal (409) puts the entity back as it was."""
        backend = self.backends.for_kind(kind.type_id)
        taken = backend is not None and bool(backend.takes.intersection(changes))
        after = room_of(kind.type_id).after_change(self, entity, changes)
        if not taken and after is None:
            return  # the store's alone
        state = state_of(before)
        if state[state_attribute(entity)] == "waiting":
            raise Conflict(f"{entity.location} is busy with a job (GET /jobs/ shows it); change "
                           "it once that is done")
        as_changed = replace(entity, attributes=dict(entity.attributes))

        def apply() -> dict[str, Any]:
            try:
                done = {**state, **(backend.update(as_changed, changes)
                                    if backend is not None and taken else {})}
            except BackendFailure as exc:
                raise Conflict(f"the infrastructure refused the change to {entity.location}: "
                               f"{exc}") from None
            return {**done, **after(as_changed, done)} if after else done

        self.defer(entity, f"changing {entity.location}", apply, lambda: None,
                   restore={**dict.fromkeys(entity.attributes), **before.attributes},
                   restore_mixins=before.mixins)

    # ------------------------------------------------------------ mixin membership
    def associate(self, mixin: Mixin, entities: Sequence[Entity]) -> None:
        for entity in entities:
            if mixin.type_id not in entity.mixins:
                self.update(entity, EntitySpec(mixins=[mixin.type_id]), full=False)

    def dissociate(self, mixin: Mixin, entities: Sequence[Entity]) -> None:
        for entity in entities:
            self._writable(entity)
            self._may_share([mixin.type_id])
            present = [m for m in entity.mixins if self.model.is_mixin_of(m, mixin.type_id)]
            for mixin_id in present:
                if self._fixed(mixin_id):
                    raise BadRequest(f"{mixin_id} cannot be removed from {entity.location}")
            if not present:
                continue
            kind = self.kind_of(entity)
            mixins = [m for m in entity.mixins if m not in present]
            definitions = self.model.attributes(kind, mixins)
            attributes = {n: v for n, v in entity.attributes.items() if n in definitions}
            changes = {n: None for n in entity.attributes if n not in attributes}
            before = replace(entity, mixins=list(entity.mixins),
                             attributes=dict(entity.attributes))
            entity.mixins, entity.attributes = mixins, attributes
            self._change(kind, entity, changes, before)
            self.repo.update(entity)

    # ------------------------------------------------------------ actions
    def trigger(self, entity: Entity, spec: ActionSpec, term: str) -> Entity | Mixin:
        kind = self.kind_of(entity)
        action, params = self.prepare_action(entity, spec, term)
        self._check_action(kind, entity, action, among_others=False)
        return self.perform(kind, entity, action, params)

    def _check_action(self, kind: Kind, entity: Entity, action: Action, *,
                      among_others: bool) -> None:
        """The entity's state allows the action, and so does its kind's room."""
        machine = self.model.state_machine(kind)
        state = entity.attributes.get(machine.attribute) if machine else None
        if machine is not None and not machine.allowed(action.term, state):
            legal = ", ".join(machine.legal_actions(state)) or "none"
            raise Conflict(f"{action.term} is not possible while {entity.location} is {state}"
                           + ("; nothing was done" if among_others
                              else f" (possible now: {legal})"))
        room_of(kind.type_id).check_action(self, entity, action)

    def prepare_action(self, entity: Entity, spec: ActionSpec, term: str
                       ) -> tuple[Action, dict[str, Any]]:
        self._writable(entity)
        kind = self.kind_of(entity)
        available = self.model.actions_of(kind, entity.mixins)
        if spec.action is not None:
            matching = [a for a in available if a.type_id == spec.action]
            if spec.action.rpartition("#")[2] != term:
                raise BadRequest(f"the query names action {term} but the body names "
                                 f"{spec.action}")
        else:
            matching = [a for a in available if a.term == term]
        if len(matching) > 1:
            raise Conflict(f"several actions are called {term}; name one in the body: "
                           + ", ".join(a.type_id for a in matching))
        if not matching:
            names = ", ".join(a.term for a in available) or "none"
            raise BadRequest(f"{entity.location} has no action {spec.action or term} "
                             f"(its actions: {names})")
        action = matching[0]
        definitions = {a.name: a for a in action.attributes}
        unknown = sorted(set(spec.attributes) - set(definitions))
        if unknown:
            raise BadRequest(f"action {action.term} takes no parameter {', '.join(unknown)}")
        params = {n: d.default for n, d in definitions.items() if d.default is not None}
        params.update(coerce_attributes(definitions, spec.attributes, what=f"{action.term}"))
        return action, params

    def trigger_all(self, entities: Sequence[Entity], spec: ActionSpec, term: str
                    ) -> list[Entity]:
        """An action on every member of a collection: all must allow it, or none runs."""
        planned = []
        for entity in entities:
            kind = self.kind_of(entity)
            action, params = self.prepare_action(entity, spec, term)
            self._check_action(kind, entity, action, among_others=True)
            planned.append((kind, entity, action, params))
        for kind, entity, action, params in planned:
            self.perform(kind, entity, action, params)
        return [entity for _, entity, _, _ in planned]

    def perform(self, kind: Kind, entity: Entity, action: Action,
                params: dict[str, Any]) -> Entity | Mixin:
        own = room_of(kind.type_id).actions.get(action.term)
        if own is not None:
            return own(self, entity, params)
        backend = self.backends.for_kind(kind.type_id)
        if backend is None:
            raise BadRequest(f"{action.type_id} is not implemented for {kind.term}")
        before = state_of(entity)
        # The backend sees the resource as it was, not `waiting`.
        as_it_was = replace(entity, attributes={**entity.attributes})

        def act() -> dict[str, Any]:
            try:
                outcome = backend.act(as_it_was, action.term, params)
            except BackendFailure as exc:
                return self._error_state(kind, exc)
            checkpoint("action.performed")
            return outcome.attributes

        self.defer(entity, f"{action.term} on {entity.location}", act, lambda: None,
                   restore=before, failure=lambda why: OperationFailed(
                       f"{action.term} failed on {entity.location}: {why}; it is now in state "
                       "error"))
        self.repo.update(entity, mixins=False)
        return entity

def server_mixins(settings: Settings, kind: Kind) -> list[str]:
    """The mixins the server sets on a new resource: its backend (a kind that is
    data alone, such as a security group, has none), and usage counters."""
    backend = settings.backend_mixins.get(kind.type_id)
    tags = [backend] if backend else []
    if kind.type_id == COMPUTE.type_id and settings.monitoring_mixin:
        tags.append(settings.monitoring_mixin)
    return tags


def _coerced(definition: Any, value: Any) -> Any:
    try:
        return definition.normalise(value)
    except ValueError:
        return value


def _same_value(stored: Any, wanted: Any) -> bool:
    if stored is None:
        return False
    numbers = (int, float)
    if isinstance(stored, numbers) and isinstance(wanted, numbers) \
            and not isinstance(stored, bool) and not isinstance(wanted, bool):
        return float(stored) == float(wanted)
    if isinstance(stored, bool) or isinstance(wanted, bool):
        return str(stored).lower() == str(wanted).lower()
    return str(stored) == str(wanted)
