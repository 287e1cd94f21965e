"""Server keys: every entity gets a name of the server's own, from which the
infrastructure behind it is named (never from the client's id).

Entities stored before keep the names today's objects already have, so that
their files, LVs, targets, domains and bridges are found where they are:
a volume's the stem of its file or LV (`vol-<key>`), a network's the digest
its bridge is named from, a compute's its id (domain `occi-<id>`), a
storagelink's the serial of its disk. Where two entities would share one
name (a client id that aliased another's digest), the later one gets a fresh
key: the object was the earlier one's.

Revision ID: 0006
Revises: 0005
"""

import hashlib
import logging
import re
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("occi_server.store")
INFRASTRUCTURE = "http://schemas.ogf.org/occi/infrastructure#"
_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,100}")


def legacy_key(entity_id: str, kind: str) -> str:
    """The key the objects of an entity made before keys are named by."""
    term = kind.removeprefix(INFRASTRUCTURE)
    if term == "storage":
        return entity_id if _PLAIN.fullmatch(entity_id) \
            else hashlib.sha256(entity_id.encode()).hexdigest()[:40]
    if term == "network":
        return hashlib.sha256(entity_id.encode()).hexdigest()[:12]
    if term == "storagelink":
        return entity_id[:20]
    return entity_id


def upgrade() -> None:
    # Plain ADD COLUMN (see 0005): NOT NULL needs a default for the rows there are.
    op.add_column("entities", sa.Column("key", sa.String(255), nullable=False,
                                        server_default=""))
    bind = op.get_bind()
    entities = sa.Table("entities", sa.MetaData(), autoload_with=bind)
    taken: set[str] = set()
    for row in bind.execute(sa.select(entities.c.id, entities.c.kind)
                            .order_by(entities.c.created, entities.c.id)).all():
        key = legacy_key(row.id, row.kind)
        if key in taken:
            fresh = secrets.token_hex(6)
            log.warning("%s shares the infrastructure name %s with an earlier entity; it "
                        "gets the key %s and no longer reaches that object", row.id, key, fresh)
            key = fresh
        taken.add(key)
        bind.execute(sa.update(entities).where(entities.c.id == row.id).values(key=key))
    op.create_index("ix_entities_key", "entities", ["key"], unique=True)
