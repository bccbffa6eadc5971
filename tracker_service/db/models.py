"""All tables, as SQLAlchemy Core. The schema itself is built by the Alembic revisions."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()


def _ts(name: str, nullable: bool = False) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable, server_default=None if nullable else func.now())


PRIORITY_RANK_SQL = "CASE priority WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 ELSE 3 END"

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("tenant", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("key_hash", Text, nullable=False, unique=True),
    Column("prefix", Text, nullable=False),
    _ts("created_at"),
    _ts("revoked_at", nullable=True),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("tenant", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("description", Text),
    Column("priority", Text, nullable=False),
    Column("priority_rank", SmallInteger, Computed(PRIORITY_RANK_SQL, persisted=True)),
    Column("status", Text, nullable=False),
    Column("assigned_to", Text),
    Column("tags", ARRAY(Text), nullable=False),
    Column("notes", Text),
    Column("completion_notes", Text),
    Column("inputs", JSONB(none_as_null=True)),
    Column("outputs", JSONB(none_as_null=True)),
    Column("due_date", DateTime(timezone=True)),
    Column("related_handoff_id", UUID(as_uuid=True)),
    Column("result", JSONB(none_as_null=True)),
    Column("type", Text),
    Column("lease_expires_at", DateTime(timezone=True)),
    _ts("created_at"),
    _ts("updated_at"),
    _ts("completed_at", nullable=True),
    Column("requires_review", Boolean, nullable=False, server_default=text("false")),
    Column("review_notes", Text),
    # The key that asked for the review: it may not give the verdict.
    Column("review_requested_by", UUID(as_uuid=True)),
    Column("parent_id", UUID(as_uuid=True), ForeignKey("tasks.id")),
    Column("auto_complete", Boolean, nullable=False, server_default=text("false")),
    # Children neither completed nor cancelled; kept by a trigger (migration 0008).
    Column("open_children", Integer, nullable=False, server_default=text("0")),
)

project_settings = Table(
    "project_settings",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("project", Text, primary_key=True),
    Column("requires_review", Boolean, nullable=False, server_default=text("false")),
    Column("reviewers", ARRAY(Text), nullable=False, server_default=text("'{}'")),
    _ts("updated_at"),
)

task_dependencies = Table(
    "task_dependencies",
    metadata,
    Column("task_id", UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
    Column("depends_on_id", UUID(as_uuid=True), ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True),
)

# Appended to by triggers (migration 0006): the number of tasks of a project in a status is the
# sum of its deltas.
task_totals = Table(
    "task_totals",
    metadata,
    Column("tenant", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("delta", BigInteger, nullable=False),
)

id_counters = Table(
    "id_counters",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("project", Text, primary_key=True),
    Column("type", Text, primary_key=True),
    Column("last_value", BigInteger, nullable=False),
    _ts("updated_at"),
)

# IDs handed back by a released reservation; the only IDs ever issued twice, lowest first.
id_free = Table(
    "id_free",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("project", Text, primary_key=True),
    Column("type", Text, primary_key=True),
    Column("value", BigInteger, primary_key=True),
)

id_reservations = Table(
    "id_reservations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("tenant", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("first_value", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("status", Text, nullable=False),
    Column("released_values", ARRAY(BigInteger)),
    Column("created_by", Text),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    _ts("created_at"),
    _ts("closed_at", nullable=True),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("tenant", Text, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_hash", Text, nullable=False),
    Column("status_code", SmallInteger),
    Column("content_type", Text),
    Column("body", LargeBinary),
    _ts("created_at"),
)

handoffs = Table(
    "handoffs",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("tenant", Text, nullable=False),
    Column("project", Text, nullable=False),
    Column("task", Text, nullable=False),
    Column("from_agent", Text, nullable=False),
    Column("to_agent", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("metadata", JSONB(none_as_null=True)),
    Column("response_to", UUID(as_uuid=True), ForeignKey("handoffs.id", ondelete="SET NULL")),
    Column("expires_at", DateTime(timezone=True)),
    _ts("created_at"),
    _ts("updated_at"),
)

events = Table(
    "events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("tenant", Text, nullable=False),
    Column("project", Text),
    Column("type", Text, nullable=False),
    Column("entity_id", Text),
    Column("actor", Text),
    Column("summary", Text, nullable=False),
    Column("data", JSONB(none_as_null=True)),
    _ts("created_at"),
)
