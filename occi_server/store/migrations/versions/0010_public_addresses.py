"""Public addresses: what each IP reservation holds of the floating IP pools.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "public_addresses",
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("pool", sa.String(255), nullable=False),
        sa.Column("reservation_id", sa.String(255), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("public_addresses")
