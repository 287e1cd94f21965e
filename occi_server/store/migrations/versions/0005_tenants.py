"""Tenants: every entity, run-time mixin and job belongs to one; users; the
usage events accounting reads.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch copy: on SQLite a copy drops and re-creates
    # the table, and the foreign keys' ON DELETE CASCADE would empty entity_mixins.
    op.add_column("entities", sa.Column("tenant", sa.String(255), nullable=False,
                                        server_default="default"))
    op.add_column("entities", sa.Column("owner", sa.String(1024), nullable=False,
                                        server_default="anonymous"))
    op.add_column("entities", sa.Column("shared", sa.Boolean, nullable=False,
                                        server_default=sa.false()))
    op.create_index("ix_entities_tenant", "entities", ["tenant"])
    op.add_column("categories", sa.Column("tenant", sa.String(255), nullable=True))
    op.add_column("jobs", sa.Column("tenant", sa.String(255), nullable=False,
                                    server_default="default"))
    op.create_table(
        "users",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=True),
        sa.Column("subject_dn", sa.String(1024), nullable=True, unique=True),
        sa.Column("tenants", sa.JSON, nullable=False),
        sa.Column("admin", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entity_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(1024), nullable=False),
        sa.Column("tenant", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(1024), nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
    )
    op.create_index("ix_usage_events_entity_id", "usage_events", ["entity_id"])
    op.create_index("ix_usage_events_time", "usage_events", ["time"])
    _record_existing_entities()


def _record_existing_entities() -> None:
    """Entities stored before accounting existed start their history as created
    when they were, in the state they are in."""
    bind = op.get_bind()
    metadata = sa.MetaData()
    entities = sa.Table("entities", metadata, autoload_with=bind)
    entity_mixins = sa.Table("entity_mixins", metadata, autoload_with=bind)
    events = sa.Table("usage_events", metadata, autoload_with=bind)
    mixins: dict[str, list[str]] = {}
    for row in bind.execute(sa.select(entity_mixins).order_by(entity_mixins.c.position)):
        mixins.setdefault(row.entity_id, []).append(row.mixin)
    rows = []
    for row in bind.execute(sa.select(entities)):
        attributes = row.attributes if isinstance(row.attributes, dict) else {}
        state = next((str(v) for k, v in attributes.items() if k.startswith("occi.")
                      and k.endswith(".state") and k.count(".") == 2), None)
        rows.append({"time": row.created, "entity_id": row.id, "kind": row.kind,
                     "tenant": "default", "owner": "anonymous", "event": "created",
                     "state": state, "details": {
                         "attributes": {k: attributes[k] for k in ACCOUNTED
                                        if attributes.get(k) is not None},
                         "mixins": mixins.get(row.id, [])}})
    if rows:
        bind.execute(sa.insert(events), rows)


# As the repository records them (kept here: a migration stays as it was written).
ACCOUNTED = ("occi.compute.cores", "occi.compute.memory", "occi.compute.hostname",
             "occi.compute.architecture", "occi.storage.size", "occi.networkinterface.address",
             "occi.core.source", "occi.core.target", "occi.core.title")


def downgrade() -> None:
    op.drop_index("ix_usage_events_time", "usage_events")
    op.drop_index("ix_usage_events_entity_id", "usage_events")
    op.drop_table("usage_events")
    op.drop_table("users")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("tenant")
    with op.batch_alter_table("categories") as batch:
        batch.drop_column("tenant")
    op.drop_index("ix_entities_tenant", "entities")
    with op.batch_alter_table("entities") as batch:
        batch.drop_column("shared")
        batch.drop_column("owner")
        batch.drop_column("tenant")
