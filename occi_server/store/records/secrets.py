"""Secrets the site makes once and shares between its workers and front ends."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from occi_server.store.records.base import Records
from occi_server.store.records.generation import UPSERT
from occi_server.store.tables import site_secrets


class SecretRecords(Records):
    def secret(self, name: str, make: Callable[[], bytes]) -> bytes:
        """The secret called `name`: made by `make` by whichever transaction asks
        first (the others, at the same moment, read the one that won)."""
        insert = UPSERT[self.connection.dialect.name](site_secrets).values(name=name, value=make())
        self.connection.execute(insert.on_conflict_do_nothing(index_elements=[site_secrets.c.name]))
        return self.connection.execute(
            select(site_secrets.c.value).where(site_secrets.c.name == name)).scalar_one()
