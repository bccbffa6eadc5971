"""The backup's durable cursor: how far the activity log has been copied to the backup store.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07

One row per backup target (name). The syncer (tracker_service.backup) reads events after
(txid, event_id) in commit order and moves the cursor only after the store has the objects, so a
crash repeats uploads (they are idempotent) and never skips one. The index on events (txid, id)
lets it read the log across tenants in that order.
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE backup_cursor (
            name text PRIMARY KEY,
            txid xid8 NOT NULL DEFAULT '0',
            event_id bigint NOT NULL DEFAULT 0,
            synced_at timestamptz,
            failures bigint NOT NULL DEFAULT 0,
            last_error text,
            last_error_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX events_backup ON events (txid, id);
        """
    )


def downgrade() -> None:
    op.execute("DROP INDEX events_backup; DROP TABLE backup_cursor;")
