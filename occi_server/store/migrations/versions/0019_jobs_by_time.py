"""Jobs are listed newest first (GET /jobs/, the web overview) from an index
of their creation time, a tenant's from one of its own: the listing sorted
the whole history of jobs, which grows with every create, action and delete
(300 000 jobs: 378 ms an operator's listing, 47 ms a tenant's of fifty;
benchmarks/bench_jobs.py).

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_jobs_created", "jobs", ["created"])
    op.create_index("ix_jobs_tenant_created", "jobs", ["tenant", "created"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_created", table_name="jobs")
    op.drop_index("ix_jobs_created", table_name="jobs")
