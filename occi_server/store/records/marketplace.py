"""The marketplace's signed entries, one per image and endorser."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy import update as sql_update

from occi_server.store.records.generation import GenerationRecords
from occi_server.store.tables import marketplace_entries


class EndorsementRecords(GenerationRecords):
    def save_endorsement(self, identifier: str, endorser: str, created: datetime,
                         document: dict[str, Any]) -> bool:
        """Keep an endorser's signed entry for an image, unless a newer one is kept
        already; True if stored."""
        table = marketplace_entries
        key = (table.c.identifier == identifier) & (table.c.endorser == endorser)
        kept = self.connection.execute(select(table.c.created).where(key)).scalar()
        if kept is not None:
            if kept.replace(tzinfo=created.tzinfo) >= created:
                return False
            self.connection.execute(delete(table).where(key))
        self.connection.execute(insert(table).values(
            identifier=identifier, endorser=endorser, created=created, deprecated=False,
            document=document))
        self._model_changed()
        return True

    def endorsements(self, identifier: str | None = None) -> list[tuple[dict[str, Any], bool]]:
        """(signed document, deprecated by the site) of every entry, or of one image's."""
        query = select(marketplace_entries.c.document, marketplace_entries.c.deprecated)
        if identifier is not None:
            query = query.where(marketplace_entries.c.identifier == identifier)
        return [(row.document, row.deprecated) for row in self.connection.execute(
            query.order_by(marketplace_entries.c.created.desc()))]

    def deprecate_image(self, identifier: str) -> int:
        changed = self.connection.execute(sql_update(marketplace_entries).where(
            marketplace_entries.c.identifier == identifier).values(deprecated=True)).rowcount
        if changed:
            self._model_changed()
        return changed
