"""OAuth 2.1 for MCP clients that cannot send a key (Claude.ai, ChatGPT connectors).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

A client registers (RFC 7591) or names a metadata document by URL; a person approves it on the
consent page, which makes a grant: the person's key, a role no higher than the key's, the resource
(RFC 8707) the tokens are for. Codes and tokens belong to a grant and are stored only as SHA-256;
deleting the grant (revocation, refresh-token replay) or revoking the key ends them all. Deleting a
grant NOTIFYs like a key change, so open streams of its tokens end at once.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE oauth_clients (
            client_id text PRIMARY KEY,
            metadata jsonb NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            fetched_at timestamptz
        );
        CREATE TABLE oauth_requests (
            id_hash text PRIMARY KEY,
            client_id text NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
            params jsonb NOT NULL,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX oauth_requests_expires ON oauth_requests (expires_at);
        CREATE TABLE oauth_grants (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            client_id text NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
            key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
            role text NOT NULL CONSTRAINT oauth_grants_role CHECK (role IN ('read', 'write', 'admin')),
            resource text,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX oauth_grants_key ON oauth_grants (key_id);
        CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
        CREATE TABLE oauth_codes (
            code_hash text PRIMARY KEY,
            grant_id uuid NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
            code_challenge text NOT NULL,
            redirect_uri text NOT NULL,
            redirect_uri_explicit boolean NOT NULL,
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX oauth_codes_grant ON oauth_codes (grant_id);
        CREATE TABLE oauth_tokens (
            token_hash text PRIMARY KEY,
            grant_id uuid NOT NULL REFERENCES oauth_grants (id) ON DELETE CASCADE,
            kind text NOT NULL CONSTRAINT oauth_tokens_kind CHECK (kind IN ('access', 'refresh')),
            expires_at timestamptz NOT NULL,
            used_at timestamptz
        );
        CREATE INDEX oauth_tokens_grant ON oauth_tokens (grant_id);
        CREATE INDEX oauth_tokens_expires ON oauth_tokens (expires_at);
        CREATE TRIGGER oauth_grants_notify AFTER DELETE ON oauth_grants
            FOR EACH STATEMENT EXECUTE FUNCTION tracker_notify_keys();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE oauth_tokens;
        DROP TABLE oauth_codes;
        DROP TABLE oauth_grants;
        DROP TABLE oauth_requests;
        DROP TABLE oauth_clients;
        """
    )
