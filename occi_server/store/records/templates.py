"""Templates a tenant keeps to create with later, as its scope sees them
(its own; an operator sees every tenant's)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import delete, insert, select, update

from occi_server.store.records.base import Records, _now
from occi_server.store.tables import templates


class TemplateRecords(Records):
    def templates(self, kind: str) -> list[dict[str, Any]]:
        query = self._own_templates(select(templates).where(templates.c.type == kind)
                                    .order_by(templates.c.created, templates.c.id))
        return [dict(row._mapping) for row in self.connection.execute(query)]

    def template(self, kind: str, template_id: str) -> dict[str, Any] | None:
        row = self.connection.execute(self._own_templates(select(templates).where(
            (templates.c.type == kind) & (templates.c.id == template_id)))).first()
        return None if row is None else dict(row._mapping)

    def insert_template(self, kind: str, name: str | None, description: str | None,
                        document: dict[str, Any]) -> str:
        """A new template of this transaction's tenant; its id (the server's)."""
        template_id = uuid.uuid4().hex
        now = _now()
        self.connection.execute(insert(templates).values(
            id=template_id, type=kind, tenant=self._stamp()[0], name=name,
            description=description, document=document, created=now, updated=now))
        return template_id

    def update_template(self, kind: str, template_id: str, **values: Any) -> None:
        self.connection.execute(update(templates).where(
            (templates.c.type == kind) & (templates.c.id == template_id))
            .values(**values, updated=_now()))

    def delete_template(self, kind: str, template_id: str) -> None:
        self.connection.execute(delete(templates).where(
            (templates.c.type == kind) & (templates.c.id == template_id)))

    def _own_templates(self, query: Any) -> Any:
        if self.sees_everything:
            return query
        assert self.scope is not None
        return query.where(templates.c.tenant == self.scope.tenant)
