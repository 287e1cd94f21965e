"""The indexes on links' ends (source_id, target_id) hold links alone: a
resource has neither, and every resource's insert and delete wrote an entry
for it in both (two B-trees of the nine an entity's row is in). Lookups by
either (a resource's links, the links to a target, deleting a source's links)
still use them: `= value` and `IN (…)` imply IS NOT NULL.

Revision ID: 0016
Revises: 0015
"""

from alembic import op
from sqlalchemy import text

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ENDS = ("source_id", "target_id")


def upgrade() -> None:
    for column in ENDS:
        op.drop_index(f"ix_entities_{column}", table_name="entities")
        where = text(f"{column} IS NOT NULL")
        op.create_index(f"ix_entities_{column}", "entities", [column], sqlite_where=where,
                        postgresql_where=where)


def downgrade() -> None:
    for column in ENDS:
        op.drop_index(f"ix_entities_{column}", table_name="entities")
        op.create_index(f"ix_entities_{column}", "entities", [column])
