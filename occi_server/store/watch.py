"""Reading the generations on every GET answered from memory: on a database
connection of each thread's own, in autocommit (one statement reads one
snapshot), without SQLAlchemy's pool and transaction around it, which cost
three times what the database does."""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from occi_server.errors import BackendUnavailable
from occi_server.store.records.generation import GENERATIONS, Generations, generations_of

log = logging.getLogger("occi_server.store")


class GenerationReader:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sql = str(GENERATIONS.compile(dialect=engine.dialect))
        self._errors = (OperationalError, engine.dialect.loaded_dbapi.Error)
        self._local = threading.local()

    def read(self) -> Generations:
        """The model and data generations now."""
        try:
            cursor = self._cursor()
            cursor.execute(self._sql)
            row = cursor.fetchone()
        except self._errors as exc:
            self._local.__dict__.pop("held", None)  # the next read connects again
            log.warning("database unavailable: %s", exc)
            raise BackendUnavailable("the database is busy or not available; try again"
                                     ) from None
        return generations_of(row)

    def _cursor(self) -> Any:
        held = getattr(self._local, "held", None)
        if held is not None and held[0] == os.getpid():  # not one a forked parent opened
            return held[2]
        proxied = self._engine.raw_connection()
        proxied.detach()  # the thread's for as long as it lives, out of the pool's count
        if self._engine.dialect.name == "postgresql":
            proxied.dbapi_connection.autocommit = True  # (SQLite's is already)
        cursor = proxied.dbapi_connection.cursor()
        self._local.held = (os.getpid(), proxied, cursor)
        return cursor
