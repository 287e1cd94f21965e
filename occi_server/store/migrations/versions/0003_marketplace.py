"""Signed image metadata of the marketplace.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "marketplace_entries",
        sa.Column("identifier", sa.String(64), primary_key=True),
        sa.Column("endorser", sa.String(1024), primary_key=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deprecated", sa.Boolean, nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("marketplace_entries")
