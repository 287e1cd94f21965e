"""The indexes on links' ends (source_id, target_id) hold links alone: a
resource has neither, and every resource's insert and delete wrote an entry
for it in both (two B-trees of the nine an entity's row is in). Lookups by
either (a resource's links, the links to a target, deleting a source's links)
still use them: `= value` and `IN (…)` imply IS NOT NULL. The target's index
carries the link's tenant and kind: how many interfaces a tenant has on
public networks is counted from it, not from every entity of the tenant.

Revision ID: 0016
Revises: 0015
"""

from alembic import op
from sqlalchemy import text

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

ENDS = (["source_id"], ["target_id", "tenant", "kind"])


def upgrade() -> None:
    for columns in ENDS:
        name = f"ix_entities_{columns[0]}"
        op.drop_index(name, table_name="entities")
        where = text(f"{columns[0]} IS NOT NULL")
        op.create_index(name, "entities", columns, sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    for columns in ENDS:
        name = f"ix_entities_{columns[0]}"
        op.drop_index(name, table_name="entities")
        op.create_index(name, "entities", columns[:1])
