"""The OCCI model in force, built once and kept while what it is built from
holds: the store's model generation (run-time mixins, marketplace entries),
the image catalogue's stamp and whom it is for; and never past the moment an
endorsement's validity ends. A request then reads one number instead of every
run-time mixin, marketplace entry and image."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import UTC, datetime

from occi_server.core import Model
from occi_server.recent import Recent
from occi_server.store import Repository

# Builds the model for a transaction's audience: the model, and until when it
# holds by time alone (None: until something it is built from changes).
Builder = Callable[[Repository, datetime], tuple[Model, datetime | None]]


class ModelCache:
    def __init__(self, build: Builder, stamp: Callable[[], Hashable], size: int = 64) -> None:
        self._build = build
        self._stamp = stamp
        # By audience (tenant) too; the least recently asked goes first.
        self._kept: Recent[Model] = Recent(size)

    def model(self, repo: Repository, generation: int) -> Model:
        """The model for `repo`'s audience at the model generation `repo` reads."""
        now = datetime.now(UTC)
        key = (generation, self._stamp(), repo.audience)
        found = self._kept.get(key, now)
        if found is not None:
            return found
        model, until = self._build(repo, now)  # outside any lock: requests build in parallel
        self._kept.put(key, model, until)
        return model

    def kept(self, generation: int, audience: str | None) -> Model | None:
        """The model kept for an audience at a model generation, if it still
        holds; None where one would have to be built."""
        return self._kept.get((generation, self._stamp(), audience), datetime.now(UTC))
