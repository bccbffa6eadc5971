"""Board sessions.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02

A person signs in to the board with an API key once; the tracker keeps a session and sets a
cookie holding a random token. Only the token's SHA-256 is stored, like a key's. A session acts
with its key's tenant and role, and only while that key is not revoked (checked on every request),
so revoking the key ends its sessions at once. Deleting the key deletes them.

Also an index of events by entity: a task's page shows its own history.
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE board_sessions (
            token_hash text PRIMARY KEY,
            key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
            csrf_token text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL
        )
        """
    )
    op.execute("CREATE INDEX board_sessions_key ON board_sessions (key_id)")
    op.execute("CREATE INDEX board_sessions_expires ON board_sessions (expires_at)")
    # A task's own history on its board page, without reading the tenant's whole log.
    op.execute("CREATE INDEX events_entity ON events (tenant, entity_id, id DESC) WHERE entity_id IS NOT NULL")


def downgrade() -> None:
    op.execute("DROP INDEX events_entity")
    op.execute("DROP TABLE board_sessions")
