"""Computes: an OS template to boot where the backend needs one, default sizes,
contextualization handed to the guest, and `save` into the catalogue."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from occi_server.backends.base import Context
from occi_server.core import Entity, Mixin
from occi_server.errors import BadRequest
from occi_server.images import Image
from occi_server.kinds.infrastructure import (
    ANTI_AFFINITY,
    ANTI_AFFINITY_GROUP,
    AVAILABILITY_ZONE,
    COMPUTE,
    COMPUTE_ARCHITECTURE,
    OS_TPL,
)
from occi_server.service.imagemixins import image_mixin
from occi_server.service.jobs import state_of
from occi_server.service.rooms.base import Room
from occi_server.service.validation import decode_user_data, template_family

if TYPE_CHECKING:
    from occi_server.service.work import Work
    from occi_server.store import Repository


def _is_zone(work: Work, mixin: Mixin) -> bool:
    return mixin.type_id != AVAILABILITY_ZONE.type_id and work.model.is_mixin_of(
        mixin.type_id, AVAILABILITY_ZONE.type_id)


def context_of(compute: Entity) -> Context:
    """The SSH keys, user data and host name handed to the guest (OCCI's or OpenStack's)."""
    values = compute.attributes
    keys = [k for k in (values.get("occi.credentials.ssh.publickey"),
                        values.get("org.openstack.credentials.publickey.data")) if k]
    name = next((n for n in ("occi.compute.userdata", "org.openstack.compute.user_data")
                 if values.get(n)), None)
    return Context(ssh_keys=tuple(keys),
                   user_data=decode_user_data(name, values[name]) if name else None,
                   hostname=values.get("occi.compute.hostname"))


def save(work: Work, compute: Entity, params: dict[str, Any]) -> Mixin:
    """Save the guest's disk as a new os_tpl (in the compute's job); answers
    with the os_tpl it will be."""
    term = f"saved-{secrets.token_hex(6)}"  # the server's name, never the client's
    title = str(params.get("name") or f"Saved from {compute.title or compute.id}")
    made: list[Image] = []
    before = state_of(compute)

    def saved() -> dict[str, Any]:
        # The backend sees the guest as it was, not `waiting`.
        as_it_was = replace(compute, attributes={**compute.attributes, **before})
        outcome = work.backends.compute.act(as_it_was, "save", {**params, "term": term})
        made.extend([outcome.image] if outcome.image else [])
        return outcome.attributes

    def publish(repo: Repository) -> None:
        """The saved image is the compute's tenant's own os_tpl (the catalogue lists
        it too; the service's model keeps it from other tenants)."""
        for image in made:
            repo.insert_mixin(image_mixin(work.settings.site_scheme, image,
                                          source=compute.location), tenant=compute.tenant)

    work.defer(compute, f"saving {compute.location} as os_tpl {term}",
               lambda: work.or_error(COMPUTE, saved), lambda: None, restore=before,
               finish=publish)
    work.repo.update(compute)
    return image_mixin(work.settings.site_scheme, Image(term=term, title=title),
                       source=compute.location)


class ComputeRoom(Room):
    kind = COMPUTE
    actions = {"save": save}

    def check_mixins(self, work: Work, mixins: list[Mixin], attributes: dict[str, Any]) -> None:
        zones = [m.term for m in mixins if _is_zone(work, m)]
        if len(zones) > 1:
            raise BadRequest(f"a compute runs in one availability zone, not {' and '.join(zones)}")
        templates = [m for m in mixins if template_family(work.model, m) == OS_TPL.type_id]
        if work.backends.compute.requires_image and not templates:
            raise BadRequest("a compute needs an OS template: add one of the os_tpl mixins "
                             "(GET /-/?category=http://schemas.ogf.org/occi/infrastructure%23"
                             "os_tpl lists them)")
        # A 64-bit image does not run on a 32-bit (x86) compute.
        requested = attributes.get("occi.compute.architecture")
        wanted = COMPUTE_ARCHITECTURE.aliases.get(requested, requested)
        for template in templates:
            if wanted == "x86" and template.info.get("architecture") == "x64":
                raise BadRequest(f"the OS template {template.term} is an x64 image; it cannot "
                                 "run on an x86 compute")

    def defaults(self, work: Work, attributes: dict[str, Any], templated: bool) -> None:
        if not templated:  # a resource_tpl's sizes, else the site's default flavour
            for name, value in work.settings.default_sizes.items():
                attributes.setdefault(name, value)

    def provision(self, work: Work, entity: Entity) -> dict[str, Any]:
        zone = next((mixin.term for mixin in map(work.model.mixin, entity.mixins)
                     if mixin is not None and _is_zone(work, mixin)), None)
        return work.backends.compute.create(entity, work.image(entity, OS_TPL.type_id),
                                            context_of(entity), zone,
                                            apart_from=_group_members(work, entity))


def _group_members(work: Work, compute: Entity) -> list[str]:
    """The keys of the tenant's other computes in the anti-affinity group
    `compute` names (read in its job: the group as it is when it is placed)."""
    if ANTI_AFFINITY.type_id not in compute.mixins:
        return []
    with work.store.transaction(write=False) as repo:
        computes = repo.everywhere().list(kinds=[COMPUTE.type_id])
    return group_members([compute, *(other for other in computes if other.id != compute.id)]
                         ).get(compute.key, [])


def group_members(computes: Sequence[Entity]) -> dict[str, list[str]]:
    """For each compute of an anti-affinity group, the keys of the other
    members (its tenant's computes naming the same group)."""
    groups: dict[tuple[str, object], list[str]] = {}
    for compute in computes:
        if ANTI_AFFINITY.type_id in compute.mixins:
            groups.setdefault((compute.tenant, compute.attributes.get(ANTI_AFFINITY_GROUP)),
                              []).append(compute.key)
    return {key: [other for other in members if other != key]
            for members in groups.values() for key in members}
