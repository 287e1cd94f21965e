"""The query interface: discovery with filtering, and user-defined mixins."""

from __future__ import annotations

from collections.abc import Sequence

from occi_server.core import Category, Kind, Mixin
from occi_server.core.specs import CategorySpec
from occi_server.errors import BadRequest, Conflict, Forbidden, NotFound
from occi_server.service.work import QUERY_PATHS, Work

RESERVED_SCHEME = "http://schemas.ogf.org/occi/"


def discover(work: Work, wanted: Sequence[CategorySpec]) -> list[Category]:
    """Every category, or those related to the requested ones: a kind with its
    actions, a mixin with its actions and the mixins that depend on it."""
    model = work.model
    if not wanted:
        return model.categories()
    found: list[Category] = []
    for spec in wanted:
        matches = [c for c in model.categories() if c.type_id == spec.type_id or (
            not spec.scheme and c.term == spec.term)]
        for category in matches:
            related: list[Category] = [category]
            if isinstance(category, Kind | Mixin):
                related.extend(category.actions)
            if isinstance(category, Mixin):
                related.extend(m for m in model.mixins() if m != category
                               and model.is_mixin_of(m.type_id, category.type_id))
            found.extend(c for c in related if c not in found)
    return found


def add_user_mixins(work: Work, specs: Sequence[CategorySpec]) -> list[Mixin]:
    if not specs:
        raise BadRequest('the request names no mixin; send Category: TERM; scheme="…#"; '
                         'class="mixin"; location="/…/"')
    created: list[Mixin] = []
    for spec in specs:
        mixin = _user_mixin(work, spec)
        work.repo.insert_mixin(mixin)
        work.model = work.model.extended([mixin])
        created.append(mixin)
    return created


def _user_mixin(work: Work, spec: CategorySpec) -> Mixin:
    model = work.model
    if spec.category_class not in (None, "mixin"):
        raise BadRequest(f"only mixins can be created through the query interface, not a "
                         f"{spec.category_class}")
    if spec.scheme.startswith(RESERVED_SCHEME):
        raise BadRequest(f"the scheme {RESERVED_SCHEME} is reserved for the OCCI "
                         "specifications; use a scheme of your own, e.g. "
                         "http://example.com/my-tags#")
    if not spec.scheme.endswith("#") or "://" not in spec.scheme:
        raise BadRequest(f"scheme {spec.scheme!r} must be an absolute URI ending in '#'")
    if model.get(spec.type_id) is not None:
        raise Conflict(f"{spec.type_id} already exists")
    if spec.attributes or spec.actions:
        raise BadRequest("user-defined mixins are tags: they cannot declare attributes or "
                         "actions")
    location = _user_location(work, spec)
    # A user mixin may depend on any mixin (GFD.221 sets no limit; pOCCI's
    # CORE/CREATE/006 makes one depend on resource_tpl). It is then listed in
    # that mixin's collection, and stays a tag: never a template (service.validation).
    for parent in spec.rel:
        if model.mixin(parent) is None and model.kind(parent) is None:
            raise BadRequest(f"{spec.type_id} depends on unknown mixin {parent}")
    depends = tuple(p for p in spec.rel if model.mixin(p) is not None)
    applies = tuple(spec.applies) + tuple(p for p in spec.rel if model.kind(p) is not None)
    for kind_id in applies:
        if model.kind(kind_id) is None:
            raise BadRequest(f"{spec.type_id} applies to unknown kind {kind_id}")
    return Mixin(spec.scheme, spec.term, title=spec.title or "", depends=depends,
                 applies=applies, location=location, origin="user")


def _user_location(work: Work, spec: CategorySpec) -> str:
    if not spec.location:
        raise BadRequest(f"mixin {spec.type_id} needs a location, e.g. location=\"/my_stuff/\"")
    location = work.local_path(spec.location)
    if "://" in location or not (location.startswith("/") and location.endswith("/")) \
            or len(location) < 3 or "?" in location or "#" in location or "//" in location:
        raise BadRequest(f"location {spec.location!r} must be a path on this server that "
                         "starts and ends with '/', e.g. /my_stuff/")
    if location in QUERY_PATHS or location.startswith("/.well-known/"):
        raise Conflict(f"location {location} is reserved for the query interface")
    if location.startswith(work.settings.cimi_path):
        raise Conflict(f"location {location} is where the CIMI interface is served")
    for taken, category in work.model.locations().items():
        if location == taken:
            raise Conflict(f"location {location} is already used by {category.type_id}")
        if isinstance(category, Kind) and location.startswith(taken):
            raise Conflict(f"location {location} lies inside the {category.term} collection "
                           f"{taken}")
    return location


def delete_user_mixins(work: Work, specs: Sequence[CategorySpec]) -> None:
    if not specs:
        raise BadRequest('name the mixin to delete: Category: TERM; scheme="…#"; '
                         'class="mixin"')
    for spec in specs:
        mixin = work.model.mixin(spec.type_id)
        if mixin is None:
            raise NotFound(f"there is no mixin {spec.type_id}")
        if mixin.origin != "user":
            raise Forbidden(f"{spec.type_id} is defined by this site and cannot be deleted")
        dependants = [m.type_id for m in work.model.mixins()
                      if mixin.type_id in m.depends and m.origin == "user"
                      and m.type_id not in {s.type_id for s in specs}]
        if dependants:
            raise Conflict(f"{spec.type_id} is depended on by {', '.join(dependants)}; "
                           "delete those first")
    for spec in specs:
        work.repo.delete_mixin(spec.type_id)
