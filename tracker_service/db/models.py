"""All tables, as SQLAlchemy Core. The schema itself is built by the Alembic revisions; these
definitions match it, indexes and constraints included (tests/service/test_schema_drift.py)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.types import UserDefinedType

metadata = MetaData()


class Xid8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id (events.txid orders the live event stream)."""

    cache_ok = True

    def get_col_spec(self, **kw: object) -> str:
        return "xid8"


ischema_names["xid8"] = Xid8  # so reflection (the schema drift test) knows the type too


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
    Index("api_keys_active_name", "tenant", "name", unique=True, postgresql_where=text("revoked_at IS NULL")),
)

# A person's sign-in to the board: a cookie's token (hashed) standing for an API key (migration 0009).
board_sessions = Table(
    "board_sessions",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("key_id", UUID(as_uuid=True), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", Text, nullable=False),
    _ts("created_at"),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("board_sessions_key", "key_id"),
    Index("board_sessions_expires", "expires_at"),
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
    # The conversation whose message first linked the task (migration 0012).
    Column("conversation_id", UUID(as_uuid=True), ForeignKey("conversations.id", ondelete="SET NULL")),
    UniqueConstraint("tenant", "project", "key", name="tasks_key_unique"),
    ForeignKeyConstraint(["related_handoff_id"], ["handoffs.id"], name="tasks_related_handoff_fk", ondelete="SET NULL"),
    # The claim and next-task queries walk these in priority order and stop at the first hit.
    Index(
        "tasks_ready",
        "tenant",
        "project",
        "priority_rank",
        "created_at",
        "id",
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "tasks_ready_typed",
        "tenant",
        "project",
        "type",
        "priority_rank",
        "created_at",
        "id",
        postgresql_where=text("status = 'pending' AND type IS NOT NULL"),
    ),
    Index("tasks_by_key", "tenant", "key"),
    Index("tasks_list", "tenant", "project", "status", "priority_rank", "created_at"),
    Index("tasks_list_order", "tenant", "project", "priority_rank", "created_at", "id"),
    Index("tasks_assigned", "tenant", "assigned_to", postgresql_where=text("assigned_to IS NOT NULL")),
    Index("tasks_tags", "tags", postgresql_using="gin"),
    # Text search (?q=): ILIKE '%text%' on title or key (migration 0010, pg_trgm).
    Index("tasks_title_trgm", "title", postgresql_using="gin", postgresql_ops={"title": "gin_trgm_ops"}),
    Index("tasks_key_trgm", "key", postgresql_using="gin", postgresql_ops={"key": "gin_trgm_ops"}),
    # The board's parents in progress (migration 0010).
    Index(
        "tasks_open_parents",
        "tenant",
        "project",
        "priority_rank",
        "created_at",
        postgresql_where=text("open_children > 0"),
    ),
    Index("tasks_lease", "lease_expires_at", postgresql_where=text("status = 'in_progress'")),
    Index("tasks_children", "parent_id", "status", postgresql_where=text("parent_id IS NOT NULL")),
    Index("tasks_conversation", "conversation_id", postgresql_where=text("conversation_id IS NOT NULL")),
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
    Index("task_dependencies_reverse", "depends_on_id"),
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
    Index("task_totals_scope", "tenant", "project", "status", postgresql_include=["delta"]),
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
    Index("id_reservations_scope", "tenant", "project", "type", "created_at"),
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
    Index("idempotency_records_age", "created_at"),
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
    Index("handoffs_list", "tenant", text("created_at DESC"), text("id DESC")),
    Index("handoffs_project", "tenant", "project", text("created_at DESC")),
    Index("handoffs_inbox", "tenant", "to_agent", "status"),
    Index("handoffs_replies", "response_to", postgresql_where=text("response_to IS NOT NULL")),
    Index("handoffs_expiry", "expires_at", postgresql_where=text("status <> 'archived' AND expires_at IS NOT NULL")),
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
    # The committing transaction's id: the live stream sends an event only once every transaction
    # that could commit an earlier one has ended (domain.events.stream).
    Column("txid", Xid8(), nullable=False, server_default=text("pg_current_xact_id()")),
    Index("events_tenant_time", "tenant", text("created_at DESC"), text("id DESC")),
    Index("events_tenant_project", "tenant", "project", text("id DESC")),
    Index("events_stream", "tenant", "txid", "id"),
    # A task's (or handoff's) own history, on its board page.
    Index("events_entity", "tenant", "entity_id", text("id DESC"), postgresql_where=text("entity_id IS NOT NULL")),
    # The backup syncer reads every tenant's events in commit order (migration 0014).
    Index("events_backup", "txid", "id"),
)

# How far the activity log has been copied to the backup store (migration 0014, tracker_service.backup).
backup_cursor = Table(
    "backup_cursor",
    metadata,
    Column("name", Text, primary_key=True),
    Column("txid", Xid8(), nullable=False, server_default=text("'0'")),
    Column("event_id", BigInteger, nullable=False, server_default=text("0")),
    Column("synced_at", DateTime(timezone=True)),
    Column("failures", BigInteger, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
    _ts("updated_at"),
)

# Seed 003's chat turns (migration 0012): messages numbered by the database, in order.
conversations = Table(
    "conversations",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("tenant", Text, nullable=False),
    Column("title", Text),
    Column("metadata", JSONB(none_as_null=True)),
    Column("message_count", Integer, nullable=False, server_default=text("0")),
    _ts("created_at"),
    _ts("updated_at"),
    Index("conversations_list", "tenant", text("created_at DESC"), text("id DESC")),
)

conversation_messages = Table(
    "conversation_messages",
    metadata,
    Column(
        "conversation_id",
        UUID(as_uuid=True),
        ForeignKey("conversations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seq", Integer, primary_key=True),
    Column("role", Text, nullable=False),
    Column("content", Text, nullable=False),
    Column("tool_calls", JSONB(none_as_null=True)),
    Column("metadata", JSONB(none_as_null=True)),
    Column("task_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'")),
    Column("handoff_ids", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'")),
    _ts("created_at"),
    CheckConstraint("role IN ('user', 'assistant', 'tool', 'system')", name="conversation_messages_role"),
)

# OAuth 2.1 (migration 0013): clients, consent requests, grants and their codes and tokens.
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", Text, primary_key=True),
    Column("metadata", JSONB, nullable=False),
    _ts("created_at"),
    Column("fetched_at", DateTime(timezone=True)),
)

oauth_requests = Table(
    "oauth_requests",
    metadata,
    Column("id_hash", Text, primary_key=True),
    Column("client_id", Text, ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("params", JSONB, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("oauth_requests_expires", "expires_at"),
)

oauth_grants = Table(
    "oauth_grants",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True, server_default=func.gen_random_uuid()),
    Column("client_id", Text, ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("key_id", UUID(as_uuid=True), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("role", Text, nullable=False),
    Column("resource", Text),
    _ts("created_at"),
    CheckConstraint("role IN ('read', 'write', 'admin')", name="oauth_grants_role"),
    Index("oauth_grants_key", "key_id"),
    Index("oauth_grants_client", "client_id"),
)

oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", Text, primary_key=True),
    Column("grant_id", UUID(as_uuid=True), ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=False),
    Column("code_challenge", Text, nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("redirect_uri_explicit", Boolean, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Index("oauth_codes_grant", "grant_id"),
)

oauth_tokens = Table(
    "oauth_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("grant_id", UUID(as_uuid=True), ForeignKey("oauth_grants.id", ondelete="CASCADE"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    CheckConstraint("kind IN ('access', 'refresh')", name="oauth_tokens_kind"),
    Index("oauth_tokens_grant", "grant_id"),
    Index("oauth_tokens_expires", "expires_at"),
)
