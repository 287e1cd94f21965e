"""The hypervisor hosts an operator adds with `occi-server host add`.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hypervisor_hosts",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("target", sa.String(1024), nullable=False, unique=True),
        sa.Column("draining", sa.Boolean, nullable=False),
        sa.Column("host_keys", sa.Text, nullable=False),
        sa.Column("added", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hypervisor_hosts")
