"""Conversations: seed 003's chat turns, logged beside the tasks they lead to.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

A conversation holds messages numbered 1, 2, 3... by the database: an append takes the
conversation's row lock (its `message_count`) and numbers its messages after the count, so
concurrent appends from any tracker process interleave whole and never share a number. A message
may link tasks and handoffs it led to; a task remembers the first conversation that linked it.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE conversations (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant text NOT NULL,
            title text,
            metadata jsonb,
            message_count integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX conversations_list ON conversations (tenant, created_at DESC, id DESC);
        CREATE TABLE conversation_messages (
            conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
            seq integer NOT NULL,
            role text NOT NULL CONSTRAINT conversation_messages_role
                CHECK (role IN ('user', 'assistant', 'tool', 'system')),
            content text NOT NULL,
            tool_calls jsonb,
            metadata jsonb,
            task_ids uuid[] NOT NULL DEFAULT '{}',
            handoff_ids uuid[] NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (conversation_id, seq)
        );
        ALTER TABLE tasks ADD COLUMN conversation_id uuid REFERENCES conversations (id) ON DELETE SET NULL;
        CREATE INDEX tasks_conversation ON tasks (conversation_id) WHERE conversation_id IS NOT NULL;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE tasks DROP COLUMN conversation_id;
        DROP TABLE conversation_messages;
        DROP TABLE conversations;
        """
    )
