"""Review gates and task hierarchy.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02

- Status `in_review`; per task `requires_review`, `review_notes` and `review_requested_by` (the
  key that asked for the review, which may not give the verdict).
- `parent_id`: a task may have a parent in its project. `open_children` counts the children that
  are neither completed nor cancelled; a trigger keeps it, so it changes in the child's own
  transaction and on the parent's row: a statement that locks the parent (to complete it, or to
  claim it) waits for a child being added or finished and then reads the count as it is.
  Deleting a parent while it has children is refused by the foreign key (NO ACTION), unless the
  same statement deletes them too.
- `auto_complete`: the parent completes itself when its last open child closes.
- `project_settings`: per project, whether new tasks require review and who may review.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATUSES = "'pending', 'in_progress', 'blocked', 'in_review', 'completed', 'failed', 'cancelled'"
OLD_STATUSES = "'pending', 'in_progress', 'blocked', 'completed', 'failed', 'cancelled'"
OPEN = "NOT IN ('completed', 'cancelled')"


def upgrade() -> None:
    op.execute(
        f"""
        ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
        ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ({STATUSES}));
        ALTER TABLE tasks
            ADD COLUMN requires_review boolean NOT NULL DEFAULT false,
            ADD COLUMN review_notes text,
            ADD COLUMN review_requested_by uuid,
            ADD COLUMN parent_id uuid REFERENCES tasks(id),
            ADD COLUMN auto_complete boolean NOT NULL DEFAULT false,
            ADD COLUMN open_children integer NOT NULL DEFAULT 0 CHECK (open_children >= 0),
            ADD CONSTRAINT tasks_not_own_parent CHECK (parent_id <> id);
        CREATE INDEX tasks_children ON tasks (parent_id, status) WHERE parent_id IS NOT NULL;

        CREATE FUNCTION tracker_count_children() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.parent_id IS NOT NULL AND OLD.status {OPEN} THEN
                UPDATE tasks SET open_children = open_children - 1 WHERE id = OLD.parent_id;
            END IF;
            IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.parent_id IS NOT NULL AND NEW.status {OPEN} THEN
                UPDATE tasks SET open_children = open_children + 1 WHERE id = NEW.parent_id;
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER tasks_children_insert AFTER INSERT ON tasks
            FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION tracker_count_children();
        CREATE TRIGGER tasks_children_delete AFTER DELETE ON tasks
            FOR EACH ROW WHEN (OLD.parent_id IS NOT NULL) EXECUTE FUNCTION tracker_count_children();
        CREATE TRIGGER tasks_children_update AFTER UPDATE OF status, parent_id ON tasks
            FOR EACH ROW WHEN (
                (OLD.parent_id IS NOT NULL OR NEW.parent_id IS NOT NULL)
                AND (OLD.parent_id IS DISTINCT FROM NEW.parent_id
                     OR (OLD.status {OPEN}) IS DISTINCT FROM (NEW.status {OPEN}))
            ) EXECUTE FUNCTION tracker_count_children();

        CREATE TABLE project_settings (
            tenant text NOT NULL,
            project text NOT NULL,
            requires_review boolean NOT NULL DEFAULT false,
            reviewers text[] NOT NULL DEFAULT '{{}}',
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (tenant, project)
        );
        """
    )


def downgrade() -> None:
    op.execute(
        f"""
        DROP TABLE project_settings;
        DROP TRIGGER tasks_children_update ON tasks;
        DROP TRIGGER tasks_children_delete ON tasks;
        DROP TRIGGER tasks_children_insert ON tasks;
        DROP FUNCTION tracker_count_children();
        DROP INDEX tasks_children;
        UPDATE tasks SET status = 'in_progress' WHERE status = 'in_review';
        ALTER TABLE tasks DROP CONSTRAINT tasks_not_own_parent;
        ALTER TABLE tasks
            DROP COLUMN open_children,
            DROP COLUMN auto_complete,
            DROP COLUMN parent_id,
            DROP COLUMN review_requested_by,
            DROP COLUMN review_notes,
            DROP COLUMN requires_review;
        ALTER TABLE tasks DROP CONSTRAINT tasks_status_check;
        ALTER TABLE tasks ADD CONSTRAINT tasks_status_check CHECK (status IN ({OLD_STATUSES}));
        """
    )
