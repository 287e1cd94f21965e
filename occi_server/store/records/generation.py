"""The generations: numbers that move on in the transaction of every change
of what they cover. The model generation: run-time categories and marketplace
entries (what the OCCI model is built from). The data generation: anything the
API shows (see `driven.shows`)."""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from occi_server.store.records.base import Records
from occi_server.store.records.driven import Driven
from occi_server.store.tables import data_generation, model_generation

# The stores supported, each with its INSERT … ON CONFLICT.
UPSERT = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class Generations(NamedTuple):
    model: int
    data: int


# Both in one statement: it reads one snapshot, inside a transaction or not.
GENERATIONS = select(select(model_generation.c.generation).scalar_subquery(),
                     select(data_generation.c.generation).scalar_subquery())


def _increase(dialect: str, table: Any) -> Any:
    upsert = UPSERT[dialect](table).values(id=1, generation=1)
    return upsert.on_conflict_do_update(index_elements=[table.c.id],
                                        set_={"generation": table.c.generation + 1})


# Built once: a statement built per write transaction cost as much as the rest of its commit.
_INCREASE = {(dialect, table.name): Driven(_increase(dialect, table))
             for dialect in UPSERT for table in (model_generation, data_generation)}
_GENERATIONS = Driven(GENERATIONS)


def generations_of(row: Any) -> Generations:
    return Generations(row[0] or 0, row[1] or 0)


class GenerationRecords(Records):
    def generations(self) -> Generations:
        """The model and data generations as this transaction sees them."""
        return generations_of(_GENERATIONS.rows(self.connection)[0])

    def model_generation(self) -> int:
        """The number every change of run-time mixins and marketplace entries increases."""
        return self.generations().model

    def _model_changed(self) -> None:
        self._increase(model_generation)

    def data_changed(self) -> None:
        """Move the data generation on (once, as the transaction that changed it ends)."""
        self._increase(data_generation)

    def _increase(self, table: Any) -> None:
        _INCREASE[self.connection.dialect.name, table.name].run_later(self.connection)
