"""TASK IDs shared by every project of a tenant; stored JSON within the depth rule.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

Automatic task keys came from a TASK counter per project, so every project had its TASK-001 and
`PUT /tasks/TASK-001/status` became ambiguous as soon as a second project existed; and they were
taken from released IDs first, which a key given by hand may hold. From now on the TASK counter,
released TASK IDs and TASK reservations belong to the tenant (stored with project ''), automatic
keys come from the counter alone, and a key of that form given by hand moves the counter past it
(tracker_service.domain.ids.service). The tenant's counter starts past every TASK number any
project's counter, reservation or key used; released TASK IDs that a task's key holds are dropped.
Keys that two projects already share stay as they are (a request names the project to pick one).

Stop trackers running older code before upgrading: they would keep using per-project counters.

Stored JSON now has a rule (at most 32 levels deep, checked before writing): values stored before
it that are deeper are kept as their JSON text, a string, so that every stored value can be served.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_TASK_NUMBER_KEY = r"^TASK-[0-9]{1,12}$"
_DEEPER_THAN_RULE = """strict $.**{32} ? (@.type() == "array" || @.type() == "object")"""


def upgrade() -> None:
    op.execute("LOCK TABLE tasks, id_counters, id_free, id_reservations IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        f"""
        INSERT INTO id_counters (tenant, project, type, last_value)
        SELECT tenant, '', 'TASK', max(v) FROM (
            SELECT tenant, last_value AS v FROM id_counters WHERE type = 'TASK'
            UNION ALL
            SELECT tenant, substring(key FROM 6)::bigint FROM tasks WHERE key ~ '{_TASK_NUMBER_KEY}'
            UNION ALL
            SELECT tenant, first_value + count - 1 FROM id_reservations WHERE type = 'TASK'
        ) used
        GROUP BY tenant
        ON CONFLICT (tenant, project, type)
        DO UPDATE SET last_value = greatest(id_counters.last_value, EXCLUDED.last_value)
        """
    )
    op.execute(
        """
        INSERT INTO id_free (tenant, project, type, value)
        SELECT DISTINCT f.tenant, '', 'TASK', f.value FROM id_free f
        WHERE f.type = 'TASK' AND f.project <> ''
          AND NOT EXISTS (
              SELECT 1 FROM tasks t
              WHERE t.tenant = f.tenant
                AND t.key = 'TASK-' || CASE WHEN f.value < 100 THEN lpad(f.value::text, 3, '0') ELSE f.value::text END)
        ON CONFLICT DO NOTHING
        """
    )
    op.execute("DELETE FROM id_free WHERE type = 'TASK' AND project <> ''")
    op.execute("DELETE FROM id_counters WHERE type = 'TASK' AND project <> ''")
    for table, column in (("tasks", "inputs"), ("tasks", "outputs"), ("tasks", "result"), ("handoffs", "metadata")):
        op.execute(
            f"UPDATE {table} SET {column} = to_jsonb({column}::text) "
            f"WHERE jsonb_path_exists({column}, '{_DEEPER_THAN_RULE}')"
        )


def downgrade() -> None:
    # Each project gets the tenant's counter (so none goes back below a key in use); released TASK
    # IDs go back to the pool of every project. JSON kept as text stays text.
    op.execute(
        """
        INSERT INTO id_counters (tenant, project, type, last_value)
        SELECT DISTINCT c.tenant, t.project, 'TASK', c.last_value
        FROM id_counters c JOIN tasks t ON t.tenant = c.tenant
        WHERE c.type = 'TASK' AND c.project = ''
        ON CONFLICT DO NOTHING
        """
    )
    op.execute(
        """
        INSERT INTO id_free (tenant, project, type, value)
        SELECT DISTINCT f.tenant, t.project, 'TASK', f.value
        FROM id_free f JOIN tasks t ON t.tenant = f.tenant
        WHERE f.type = 'TASK' AND f.project = ''
        ON CONFLICT DO NOTHING
        """
    )
    op.execute("DELETE FROM id_free WHERE type = 'TASK' AND project = ''")
    op.execute("DELETE FROM id_counters WHERE type = 'TASK' AND project = ''")
