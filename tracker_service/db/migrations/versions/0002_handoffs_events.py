"""Handoffs, task types for delegation, and commit-ordered events with LISTEN/NOTIFY.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE handoffs (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant text NOT NULL,
            project text NOT NULL,
            task text NOT NULL,
            from_agent text NOT NULL,
            to_agent text NOT NULL,
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','read','processed','archived')),
            content text NOT NULL,
            metadata jsonb,
            response_to uuid REFERENCES handoffs(id) ON DELETE SET NULL,
            expires_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX handoffs_list ON handoffs (tenant, created_at DESC, id DESC);
        CREATE INDEX handoffs_project ON handoffs (tenant, project, created_at DESC);
        CREATE INDEX handoffs_inbox ON handoffs (tenant, to_agent, status);
        CREATE INDEX handoffs_replies ON handoffs (response_to) WHERE response_to IS NOT NULL;
        CREATE INDEX handoffs_expiry ON handoffs (expires_at) WHERE status <> 'archived' AND expires_at IS NOT NULL;

        ALTER TABLE tasks ADD CONSTRAINT tasks_related_handoff_fk
            FOREIGN KEY (related_handoff_id) REFERENCES handoffs(id) ON DELETE SET NULL;

        -- Delegated work has a type (code, general, ...) that workers claim by.
        ALTER TABLE tasks ADD COLUMN type text;
        CREATE INDEX tasks_ready_typed ON tasks (tenant, project, type, priority_rank, created_at, id)
            WHERE status = 'pending' AND type IS NOT NULL;

        -- The writing transaction's id orders events by commit visibility: an event whose
        -- txid is below the oldest running transaction can never be preceded by a later one.
        ALTER TABLE events ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
        CREATE INDEX events_stream ON events (tenant, txid, id);

        CREATE FUNCTION tracker_notify_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tracker_events', NEW.tenant);
            RETURN NULL;
        END $$;
        CREATE TRIGGER events_notify AFTER INSERT ON events
            FOR EACH ROW EXECUTE FUNCTION tracker_notify_event();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER events_notify ON events;
        DROP FUNCTION tracker_notify_event();
        DROP INDEX events_stream;
        ALTER TABLE events DROP COLUMN txid;
        DROP INDEX tasks_ready_typed;
        ALTER TABLE tasks DROP COLUMN type;
        ALTER TABLE tasks DROP CONSTRAINT tasks_related_handoff_fk;
        DROP TABLE handoffs;
        """
    )
