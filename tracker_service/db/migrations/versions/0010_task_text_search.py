"""Trigram indexes for finding tasks by text; an index of parents with open children.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

`GET /tasks?q=` and the board's search box look for a text anywhere in a task's title or key
(ILIKE '%text%'), which no b-tree can serve: at 1M tasks every count was a scan of the table
(3.9 s for a board page, BENCHMARKS.md). pg_trgm's GIN indexes serve such patterns; pg_trgm is a
trusted extension (PostgreSQL 13+), so the database's owner may create it.

The board lists parents in progress (open, with open children) by priority; a partial index finds
them without walking the project's tasks.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX tasks_title_trgm ON tasks USING gin (title gin_trgm_ops)")
    op.execute("CREATE INDEX tasks_key_trgm ON tasks USING gin (key gin_trgm_ops)")
    op.execute(
        "CREATE INDEX tasks_open_parents ON tasks (tenant, project, priority_rank, created_at) WHERE open_children > 0"
    )


def downgrade() -> None:
    op.execute("DROP INDEX tasks_open_parents")
    op.execute("DROP INDEX tasks_key_trgm")
    op.execute("DROP INDEX tasks_title_trgm")
    # The extension stays: other objects of the database may have come to use it.
