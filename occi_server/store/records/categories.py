"""Run-time categories (tags, saved images) and the model generation every change
of them, or of the marketplace, moves on."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from occi_server.core import Mixin
from occi_server.store.records.base import _now, audience_of
from occi_server.store.records.generation import GenerationRecords
from occi_server.store.tables import categories, entity_mixins


class CategoryRecords(GenerationRecords):
    @property
    def audience(self) -> str | None:
        """Whom this transaction's model is for: None for whoever sees every
        tenant, else the tenant (run-time mixins are offered per tenant)."""
        return audience_of(self.scope)

    def mixins(self) -> tuple[list[Mixin], set[str]]:
        """Run-time mixins this transaction's scope is offered (the site's and its
        tenant's own: tags, saved images), and the type ids of other tenants' (a
        saved image the catalogue also lists is its tenant's alone)."""
        offered, hidden = [], set()
        for row in self.connection.execute(select(categories).order_by(categories.c.created)):
            if self.sees_everything or row.tenant is None or (
                    self.scope is not None and row.tenant == self.scope.tenant):
                offered.append(Mixin(
                    row.scheme, row.term, title=row.title or "", depends=tuple(row.depends),
                    applies=tuple(row.applies), location=row.location, origin=row.origin,
                    info=dict(row.info)))
            else:
                hidden.add(row.type_id)
        return offered, hidden

    def insert_mixin(self, mixin: Mixin, *, tenant: str | None = None) -> None:
        """Keep a run-time mixin, offered to `tenant` (default: this transaction's)."""
        self.connection.execute(insert(categories).values(
            type_id=mixin.type_id, scheme=mixin.scheme, term=mixin.term, title=mixin.title,
            location=mixin.location, depends=list(mixin.depends), applies=list(mixin.applies),
            origin=mixin.origin, info=dict(mixin.info), created=_now(),
            tenant=tenant or self._stamp()[0]))
        self._model_changed()

    def delete_mixin(self, type_id: str) -> None:
        self.connection.execute(delete(entity_mixins).where(entity_mixins.c.mixin == type_id))
        self.connection.execute(delete(categories).where(categories.c.type_id == type_id))
        self._model_changed()
