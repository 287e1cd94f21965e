"""Addresses and MACs of network interfaces, unique by primary key.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ip_allocations",
        sa.Column("network_id", sa.String(255),
                  sa.ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("link_id", sa.String(255), nullable=False, unique=True),
    )
    op.create_table(
        "mac_allocations",
        sa.Column("mac", sa.String(17), primary_key=True),
        sa.Column("link_id", sa.String(255), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("mac_allocations")
    op.drop_table("ip_allocations")
