"""Collections are listed in creation order by kind, a page or a chunk at a
time: an index on (kind, created, id) gives each page without sorting the
whole collection.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_entities_kind_created_id", "entities", ["kind", "created", "id"])


def downgrade() -> None:
    op.drop_index("ix_entities_kind_created_id", table_name="entities")
