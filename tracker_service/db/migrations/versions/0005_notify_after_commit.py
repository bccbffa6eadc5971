"""Events no longer NOTIFY from inside the writing transaction.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

A transaction that NOTIFYs holds PostgreSQL's global notify lock from its pre-commit through its
WAL flush, so every write that logged an event committed one after another. The tracker now
sends the NOTIFY itself after the commit, from a connection of its own, coalesced
(tracker_service.notify); this trigger would only serialize the writes again.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        DROP TRIGGER events_notify ON events;
        DROP FUNCTION tracker_notify_event();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION tracker_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tracker_events', NEW.tenant);
            RETURN NULL;
        END $$;
        CREATE TRIGGER events_notify AFTER INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION tracker_notify_event();
        """
    )
