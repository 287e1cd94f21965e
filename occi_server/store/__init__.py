"""Persistence: SQLAlchemy tables, migrations and the repository."""

from occi_server.store.records.base import audience_of
from occi_server.store.records.entities import Position
from occi_server.store.records.generation import Generations
from occi_server.store.repository import DEFAULT_TENANT, Repository, Scope, Store

__all__ = ["DEFAULT_TENANT", "Generations", "Position", "Repository", "Scope", "Store",
           "audience_of"]
