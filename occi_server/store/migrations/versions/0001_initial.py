"""Entities, their mixins, and run-time categories.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "entities",
        sa.Column("id", sa.String(255), primary_key=True),
        sa.Column("kind", sa.String(1024), nullable=False),
        sa.Column("location", sa.String(1024), nullable=False, unique=True),
        sa.Column("source_id", sa.String(255),
                  sa.ForeignKey("entities.id", ondelete="CASCADE"), nullable=True),
        sa.Column("target", sa.Text, nullable=True),
        sa.Column("target_id", sa.String(255), nullable=True),
        sa.Column("target_kind", sa.String(1024), nullable=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_entities_kind", "entities", ["kind"])
    op.create_index("ix_entities_source_id", "entities", ["source_id"])
    op.create_index("ix_entities_target_id", "entities", ["target_id"])
    op.create_index("ix_entities_created", "entities", ["created"])
    op.create_table(
        "entity_mixins",
        sa.Column("entity_id", sa.String(255),
                  sa.ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("mixin", sa.String(1024), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
    )
    op.create_index("ix_entity_mixins_mixin", "entity_mixins", ["mixin"])
    op.create_table(
        "categories",
        sa.Column("type_id", sa.String(1024), primary_key=True),
        sa.Column("scheme", sa.String(1024), nullable=False),
        sa.Column("term", sa.String(255), nullable=False),
        sa.Column("title", sa.Text, nullable=True),
        sa.Column("location", sa.String(1024), nullable=False, unique=True),
        sa.Column("depends", sa.JSON, nullable=False),
        sa.Column("applies", sa.JSON, nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("info", sa.JSON, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("categories")
    op.drop_index("ix_entity_mixins_mixin", "entity_mixins")
    op.drop_table("entity_mixins")
    op.drop_table("entities")
