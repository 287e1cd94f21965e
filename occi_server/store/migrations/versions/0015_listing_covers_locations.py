"""Location lists read the listing index alone: it carries, after (kind,
created, id), what a tenant's scope tests (tenant, shared) and the location
itself, so a list of 10 000 locations reads no table row. The index on kind
alone goes: the listing index begins with kind (one B-tree fewer for every
insert and delete to write).

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

LISTING = ["kind", "created", "id", "tenant", "shared", "location"]


def upgrade() -> None:
    op.create_index("ix_entities_listing", "entities", LISTING)
    op.drop_index("ix_entities_kind_created_id", table_name="entities")
    op.drop_index("ix_entities_kind", table_name="entities")


def downgrade() -> None:
    op.create_index("ix_entities_kind", "entities", ["kind"])
    op.create_index("ix_entities_kind_created_id", "entities", ["kind", "created", "id"])
    op.drop_index("ix_entities_listing", table_name="entities")
