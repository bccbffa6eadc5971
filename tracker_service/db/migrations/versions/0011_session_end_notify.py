"""A board session that ends (sign-out, or swept once expired) wakes the streams it opened.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Live streams re-check their credential when `tracker_keys` is notified (migration 0004); deleting
a board session now notifies it too, so the session's /events and /ws streams end at once, not
only when its key is revoked. Row-level: a sweep that deletes nothing notifies nobody.
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE TRIGGER board_sessions_notify AFTER DELETE ON board_sessions "
        "FOR EACH ROW EXECUTE FUNCTION tracker_notify_keys()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER board_sessions_notify ON board_sessions")
