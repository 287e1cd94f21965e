"""Leases (the reconciler's election, the liveness of processes with jobs at
work) and the holder of each job, so that another front end can take over
the jobs of one that died; rate-limit counters every front end shares.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("holder", sa.String(255), nullable=True))
    op.create_table(
        "rate_hits",
        sa.Column("key", sa.String(512), primary_key=True),
        sa.Column("window_start", sa.Integer, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rate_hits")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("holder")
    op.drop_table("leases")
