"""Service core: api keys, tasks and dependencies, the ID registry, idempotency records, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

STATUSES = "'pending','in_progress','blocked','completed','failed','cancelled'"
PRIORITIES = "'critical','high','medium','low'"


def upgrade() -> None:
    op.execute(
        f"""
        CREATE TABLE api_keys (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant text NOT NULL,
            name text NOT NULL,
            role text NOT NULL CHECK (role IN ('read','write','admin')),
            key_hash text NOT NULL UNIQUE,
            prefix text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        CREATE UNIQUE INDEX api_keys_active_name ON api_keys (tenant, name) WHERE revoked_at IS NULL;

        CREATE TABLE tasks (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant text NOT NULL,
            project text NOT NULL,
            key text NOT NULL,
            title text NOT NULL,
            description text,
            priority text NOT NULL DEFAULT 'medium' CHECK (priority IN ({PRIORITIES})),
            priority_rank smallint GENERATED ALWAYS AS (
                CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END
            ) STORED,
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ({STATUSES})),
            assigned_to text,
            tags text[] NOT NULL DEFAULT '{{}}',
            notes text,
            completion_notes text,
            inputs jsonb,
            outputs jsonb,
            due_date timestamptz,
            related_handoff_id uuid,
            result jsonb,
            lease_expires_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            completed_at timestamptz,
            CONSTRAINT tasks_key_unique UNIQUE (tenant, project, key)
        );
        -- The claim and next-task queries walk this index in priority order and stop at the first hit.
        CREATE INDEX tasks_ready ON tasks (tenant, project, priority_rank, created_at, id)
            WHERE status = 'pending';
        CREATE INDEX tasks_by_key ON tasks (tenant, key);
        CREATE INDEX tasks_list ON tasks (tenant, project, status, priority_rank, created_at);
        CREATE INDEX tasks_assigned ON tasks (tenant, assigned_to) WHERE assigned_to IS NOT NULL;
        CREATE INDEX tasks_tags ON tasks USING gin (tags);
        CREATE INDEX tasks_lease ON tasks (lease_expires_at) WHERE status = 'in_progress';

        CREATE TABLE task_dependencies (
            task_id uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
            depends_on_id uuid NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
            PRIMARY KEY (task_id, depends_on_id),
            CHECK (task_id <> depends_on_id)
        );
        CREATE INDEX task_dependencies_reverse ON task_dependencies (depends_on_id);

        CREATE TABLE id_counters (
            tenant text NOT NULL,
            project text NOT NULL,
            type text NOT NULL,
            last_value bigint NOT NULL CHECK (last_value >= 0),
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant, project, type)
        );

        CREATE TABLE id_free (
            tenant text NOT NULL,
            project text NOT NULL,
            type text NOT NULL,
            value bigint NOT NULL,
            PRIMARY KEY (tenant, project, type, value)
        );

        CREATE TABLE id_reservations (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            tenant text NOT NULL,
            project text NOT NULL,
            type text NOT NULL,
            first_value bigint NOT NULL,
            count integer NOT NULL CHECK (count BETWEEN 1 AND 100),
            status text NOT NULL CHECK (status IN ('active','committed','released')),
            released_values bigint[],
            created_by text,
            expires_at timestamptz NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            closed_at timestamptz
        );
        CREATE INDEX id_reservations_scope ON id_reservations (tenant, project, type, created_at);

        CREATE TABLE idempotency_records (
            tenant text NOT NULL,
            key text NOT NULL,
            request_hash text NOT NULL,
            status_code smallint,
            content_type text,
            body bytea,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant, key)
        );
        CREATE INDEX idempotency_records_age ON idempotency_records (created_at);

        CREATE TABLE events (
            id bigserial PRIMARY KEY,
            tenant text NOT NULL,
            project text,
            type text NOT NULL,
            entity_id text,
            actor text,
            summary text NOT NULL,
            data jsonb,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX events_tenant_time ON events (tenant, created_at DESC, id DESC);
        CREATE INDEX events_tenant_project ON events (tenant, project, id DESC);
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TABLE events;
        DROP TABLE idempotency_records;
        DROP TABLE id_reservations;
        DROP TABLE id_free;
        DROP TABLE id_counters;
        DROP TABLE task_dependencies;
        DROP TABLE tasks;
        DROP TABLE api_keys;
        """
    )
