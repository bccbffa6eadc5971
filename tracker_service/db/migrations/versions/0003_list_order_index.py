"""An index in list order for lists without a status filter.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

GET /tasks?project=P (every status) sorts by priority, then age; without an index in that
order PostgreSQL read and sorted the whole project (126 ms at 1M tasks in the benchmark).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX tasks_list_order ON tasks (tenant, project, priority_rank, created_at, id)")


def downgrade() -> None:
    op.execute("DROP INDEX tasks_list_order")
