"""Tell every tracker process when API keys change.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Tracker processes cache key -> tenant lookups. Any change to api_keys (created, revoked, role
changed, deleted, by the CLI or by hand in psql) NOTIFYs `tracker_keys` when it commits, and each
process empties its cache on that notification, so a revoked key stops working at once.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION tracker_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tracker_keys', '');
            RETURN NULL;
        END $$;
        CREATE TRIGGER api_keys_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON api_keys
            FOR EACH STATEMENT EXECUTE FUNCTION tracker_notify_keys();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER api_keys_notify ON api_keys;
        DROP FUNCTION tracker_notify_keys();
        """
    )
