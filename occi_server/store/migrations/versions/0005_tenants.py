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
    with op.batch_alter_table("entities") as batch:
        batch.add_column(sa.Column("tenant", sa.String(255), nullable=False,
                                   server_default="default"))
        batch.add_column(sa.Column("owner", sa.String(1024), nullable=False,
                                   server_default="anonymous"))
        batch.add_column(sa.Column("shared", sa.Boolean, nullable=False,
                                   server_default=sa.false()))
    op.create_index("ix_entities_tenant", "entities", ["tenant"])
    with op.batch_alter_table("categories") as batch:
        batch.add_column(sa.Column("tenant", sa.String(255), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("tenant", sa.String(255), nullable=False,
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
