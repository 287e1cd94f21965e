"""What a request path names: the query interface, a kind's or mixin's
collection, an entity, a free path to PUT a new one at, a compute's console,
the quotas; resolved for the request's scope (another tenant's entity is
nothing)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from occi_server.core import Entity, Kind, Mixin
from occi_server.errors import NotFound
from occi_server.kinds.infrastructure import COMPUTE
from occi_server.kinds.tenancy import QUOTA
from occi_server.service import QUERY_PATHS, Work


class Shape(StrEnum):
    """What a request path can name."""

    QUERY = "query"  # the query interface, /-/
    KIND = "kind"  # a kind's collection
    MIXIN = "mixin"  # a mixin's collection
    ENTITY = "entity"  # a resource or link
    NEW = "new"  # a free path in a kind's collection (PUT creates there)
    UNBOUND = "unbound"  # a path above collections, such as /
    CONSOLE = "console"  # a compute's console log
    QUOTA = "quota"  # the quotas, or one tenant's


@dataclass
class Target:
    """What a request path names."""

    shape: Shape
    path: str
    category: Kind | Mixin | None = None
    entity: Entity | None = None

    @property
    def collection(self) -> Kind | Mixin | None:
        """The kind or mixin whose collection the path names (None: not one)."""
        return self.category if self.shape in (Shape.KIND, Shape.MIXIN) else None


def resolve(work: Work, path: str) -> Target:
    """What `path` names for this request's scope; NotFound when nothing."""
    if path in QUERY_PATHS:
        return Target(Shape.QUERY, path)
    if path.startswith(QUOTA.location.rstrip("/")):
        return _quota_target(work, path)
    category = work.model.by_location(path)
    if category is None and not path.endswith("/"):
        category = work.model.by_location(path + "/")
    if category is not None:
        shape = Shape.KIND if isinstance(category, Kind) else Shape.MIXIN
        return Target(shape, category.location or path, category=category)
    if not path.endswith("/"):
        entity = work.at(path)
        if entity is not None:
            return Target(Shape.ENTITY, path, entity=entity)
        if path.endswith("/console"):
            owner = work.at(path.removesuffix("/console"))
            if owner is not None and owner.kind == COMPUTE.type_id:
                return Target(Shape.CONSOLE, path, entity=owner)
        parent, _, last = path.rpartition("/")
        kind = work.model.by_location(parent + "/")
        if isinstance(kind, Kind) and last:
            if work.taken(path):
                raise NotFound(f"nothing at {path}")  # another tenant's
            return Target(Shape.NEW, path, category=kind)
        raise NotFound(f"nothing at {path}")
    if path == "/" or any(loc.startswith(path) for loc in work.model.locations()):
        return Target(Shape.UNBOUND, path)
    raise NotFound(f"nothing at {path}")


def _quota_target(work: Work, path: str) -> Target:
    """/quota/ (the visible tenants' quotas) or /quota/<tenant>."""
    tenant = path.removeprefix(QUOTA.location.rstrip("/")).strip("/")
    if not tenant:
        return Target(Shape.QUOTA, QUOTA.location, category=QUOTA)
    entity = work.quota_of(tenant) if "/" not in tenant else None
    if entity is None:
        raise NotFound(f"nothing at {path}")
    return Target(Shape.QUOTA, path, category=QUOTA, entity=entity)
