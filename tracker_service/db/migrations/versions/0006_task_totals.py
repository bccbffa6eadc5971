"""Task totals per project and status, kept by triggers, so a list's `total` does not count rows.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22

GET /tasks?project=P answered `total` with count(*) over the matching rows: at 1M tasks 3.2x
slower than at 10k without a status filter, 1.9x with status=pending, and growing with every
task ever made. A task's tenant and project never change; its status does. Triggers append each
change as rows of (tenant, project, status, +n / -n): statement-level ones for INSERT and DELETE,
a row-level one for UPDATEs that change the status. Appending, rather than updating one row per
project and status, keeps writers from locking each other: an updated counter row would be held
by every claim until its commit, serializing claims and deadlocking batches that touch projects in
different orders. A total is the sum of its rows, and the sweeper folds them into one row per
(tenant, project, status) every round (tracker_service.sweeper), so a sum reads about as many
rows as there were changes since the last fold, however many tasks there are.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        -- No task may be written between the count below and the triggers (another tracker process
        -- still running the old code during a rolling restart): it would be missing for good.
        LOCK TABLE tasks IN SHARE ROW EXCLUSIVE MODE;

        CREATE TABLE task_totals (
            tenant text NOT NULL,
            project text NOT NULL,
            status text NOT NULL,
            delta bigint NOT NULL
        );
        CREATE INDEX task_totals_scope ON task_totals (tenant, project, status) INCLUDE (delta);
        INSERT INTO task_totals SELECT tenant, project, status, count(*) FROM tasks GROUP BY 1, 2, 3;

        CREATE FUNCTION tracker_count_tasks() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                INSERT INTO task_totals SELECT tenant, project, status, count(*) FROM new_rows GROUP BY 1, 2, 3;
            ELSIF TG_OP = 'DELETE' THEN
                INSERT INTO task_totals SELECT tenant, project, status, -count(*) FROM old_rows GROUP BY 1, 2, 3;
            ELSE
                TRUNCATE task_totals;  -- waits for a fold in progress, so none of its rows survive
            END IF;
            RETURN NULL;
        END $$;
        CREATE FUNCTION tracker_count_status() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO task_totals VALUES
                (OLD.tenant, OLD.project, OLD.status, -1), (NEW.tenant, NEW.project, NEW.status, 1);
            RETURN NULL;
        END $$;
        CREATE TRIGGER tasks_count_insert AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION tracker_count_tasks();
        CREATE TRIGGER tasks_count_delete AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows
            FOR EACH STATEMENT EXECUTE FUNCTION tracker_count_tasks();
        CREATE TRIGGER tasks_count_truncate AFTER TRUNCATE ON tasks
            FOR EACH STATEMENT EXECUTE FUNCTION tracker_count_tasks();
        CREATE TRIGGER tasks_count_status AFTER UPDATE OF status ON tasks
            FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION tracker_count_status();
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER tasks_count_status ON tasks;
        DROP TRIGGER tasks_count_truncate ON tasks;
        DROP TRIGGER tasks_count_delete ON tasks;
        DROP TRIGGER tasks_count_insert ON tasks;
        DROP FUNCTION tracker_count_status();
        DROP FUNCTION tracker_count_tasks();
        DROP TABLE task_totals;
        """
    )
