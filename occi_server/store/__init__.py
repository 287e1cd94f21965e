"""Persistence: SQLAlchemy tables, migrations and the repository."""

from occi_server.store.repository import Repository, Store

__all__ = ["Repository", "Store"]
