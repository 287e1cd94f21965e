"""The model generation: a number every change of run-time categories and of
marketplace entries moves on, in the same transaction."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from occi_server.store.records.base import Records
from occi_server.store.tables import model_generation

_GENERATION = select(model_generation.c.generation)
# The stores supported, each with its INSERT … ON CONFLICT.
UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class GenerationRecords(Records):
    def model_generation(self) -> int:
        """The number every change of run-time mixins and marketplace entries increases."""
        return self.connection.execute(_GENERATION).scalar() or 0

    def _model_changed(self) -> None:
        table = model_generation
        upsert = UPSERT[self.connection.dialect.name](table).values(id=1, generation=1)
        self.connection.execute(upsert.on_conflict_do_update(
            index_elements=[table.c.id], set_={"generation": table.c.generation + 1}))
