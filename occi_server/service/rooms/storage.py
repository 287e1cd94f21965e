"""Volumes: clones at least as large as their image, sizes that reach the guests
a volume is attached to, no `offline` under a guest, and `snapshot` and
`backup`."""

from __future__ import annotations

import logging
import uuid
from typing import TYPE_CHECKING, Any

from occi_server.core import Action, Entity
from occi_server.errors import BackendFailure, BadRequest, Conflict
from occi_server.kinds.infrastructure import GIB, IMAGE_TPL, STORAGE, STORAGE_SIZE, STORAGELINK
from occi_server.service.jobs import state_of
from occi_server.service.rooms.base import AfterChange, Room

if TYPE_CHECKING:
    from occi_server.service.work import Work

log = logging.getLogger("occi_server.service")


def snapshot(work: Work, storage: Entity, params: dict[str, Any]) -> Entity:
    """A new storage resource holding a copy of the volume (copied in its job)."""
    copy_id = str(uuid.uuid4())
    title = params.get("name") or f"snapshot of {storage.title or storage.id}"
    copy = Entity(id=copy_id, kind=STORAGE.type_id, location=f"{STORAGE.location}{copy_id}",
                  mixins=work.server_mixins(STORAGE),
                  attributes={"occi.core.id": copy_id, "occi.core.title": title,
                              STORAGE_SIZE: storage.attributes[STORAGE_SIZE]})
    work.quota.admit(copy)
    work.defer(copy, f"copying {storage.location} into {copy.location}",
               lambda: work.or_error(STORAGE, lambda: work.backends.storage.snapshot(
                   storage, copy)),
               lambda: work.backends.storage.delete(copy))
    work.repo.insert(copy)
    return copy


def backup(work: Work, storage: Entity, params: dict[str, Any]) -> Entity:
    """Copy the volume to the backup area (in its job)."""
    before = state_of(storage)
    work.defer(storage, f"backing up {storage.location}",
               lambda: work.or_error(STORAGE, lambda: {
                   **before, **work.backends.storage.backup(storage)}),
               lambda: None, restore=before)
    work.repo.update(storage)
    return storage


class StorageRoom(Room):
    kind = STORAGE
    actions = {"snapshot": snapshot, "backup": backup}

    def check_new(self, work: Work, entity: Entity) -> None:
        """A volume cloned from an image is at least as large as the image."""
        image = work.image(entity, IMAGE_TPL.type_id)
        needed = image.info.get("virtual_size") if image else None
        if image and needed and float(entity.attributes[STORAGE_SIZE]) * GIB < needed:
            raise BadRequest(f"image {image.term} holds {needed / GIB:g} GiB; "
                             f"{STORAGE_SIZE} must be at least that (leave it out to get "
                             "exactly the image's size)")

    def provision(self, work: Work, entity: Entity) -> dict[str, Any]:
        return work.backends.storage.create(entity, work.image(entity, IMAGE_TPL.type_id))

    def after_change(self, work: Work, entity: Entity,
                     changes: dict[str, Any]) -> AfterChange | None:
        """A grown volume reaches the guests it is attached to."""
        if changes.get(STORAGE_SIZE) is None:
            return None
        guests = []
        for link in work.repo.links_to(entity.id):
            compute = work.repo.by_location(link.source or "")
            if compute is not None and link.kind == STORAGELINK.type_id:
                guests.append((compute, link))
        if not guests:
            return None

        def tell_guests(storage: Entity, done: dict[str, Any]) -> dict[str, Any]:
            size = int(float(storage.attributes[STORAGE_SIZE]) * GIB)
            missed = []
            for compute, link in guests:
                try:
                    work.backends.compute.storage_grown(compute, link, size)
                except BackendFailure as exc:
                    log.warning("%s did not see %s grow: %s", compute.location,
                                storage.location, exc)
                    missed.append(compute.location)
            if not missed:
                return {}
            message = done.get("occi.storage.state.message") or "resized"
            return {"occi.storage.state.message": f"{message}; {', '.join(missed)} sees the "
                                                  "new size once the volume is attached again"}
        return tell_guests

    def check_action(self, work: Work, entity: Entity, action: Action) -> None:
        if action.term == "offline":
            for link in work.repo.links_to(entity.id):
                raise Conflict(f"{entity.location} is attached to {link.source} through "
                               f"{link.location}; detach it before taking it offline")
