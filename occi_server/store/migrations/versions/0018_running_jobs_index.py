"""The running jobs have an index of their own (partial: a job leaves it as it
ends): a reconciler pass looks for them every few seconds with the store's
write lock held, and read the whole history of jobs to find them (18 ms for
200 000 jobs, growing with every create and delete).

Revision ID: 0018
Revises: 0017
"""

from alembic import op
from sqlalchemy import text

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    running = text("state = 'running'")
    op.create_index("ix_jobs_running", "jobs", ["state"], sqlite_where=running,
                    postgresql_where=running)


def downgrade() -> None:
    op.drop_index("ix_jobs_running", table_name="jobs")
