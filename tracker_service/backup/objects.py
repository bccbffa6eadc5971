"""What the backup store holds and where: pure functions from rows to (path, bytes) and back.

Layout, under the store's root:
  <tenant>/<project>/tasks/<key>.json        a task: its columns, with dependencies and parent by key
  <tenant>/<project>/handoffs/<id>.md        a handoff: front matter (one JSON value per line), then content
  <tenant>/<project>/ids.json                the project's ID counters, free IDs and reservations
  <tenant>/<project>/settings.json           the project's settings (review)
  <tenant>/journal/<txid>-<id>.jsonl         the events of one sync pass, one JSON line each

Path segments are percent-encoded, so any tenant, project or key name is one safe segment. The
tenant-wide scope of ID counters (task keys, project "") is "@tenant"; a project named so is
encoded as "%40tenant".
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote
from uuid import UUID

TENANT_SCOPE_SEGMENT = "@tenant"
# Derived by the database (a computed column, a trigger's count): rebuilt on restore, not stored.
DERIVED_TASK_COLUMNS = frozenset({"priority_rank", "open_children"})
HANDOFF_FIELDS = (
    "id",
    "project",
    "task",
    "from_agent",
    "to_agent",
    "direction",
    "status",
    "response_to",
    "metadata",
    "expires_at",
    "created_at",
    "updated_at",
)


def segment(name: str) -> str:
    if name == "":
        return TENANT_SCOPE_SEGMENT
    encoded = quote(name, safe="-_~:+=,")
    # "." and ".." are not names in a path; "%2E" keeps them literal.
    return encoded.replace(".", "%2E") if set(encoded) == {"."} else encoded


def unsegment(part: str) -> str:
    return "" if part == TENANT_SCOPE_SEGMENT else unquote(part)


def task_path(tenant: str, project: str, key: str) -> str:
    return f"{segment(tenant)}/{segment(project)}/tasks/{segment(key)}.json"


def handoff_path(tenant: str, project: str, handoff_id: object) -> str:
    return f"{segment(tenant)}/{segment(project)}/handoffs/{handoff_id}.md"


def ids_path(tenant: str, project: str) -> str:
    return f"{segment(tenant)}/{segment(project)}/ids.json"


def settings_path(tenant: str, project: str) -> str:
    return f"{segment(tenant)}/{segment(project)}/settings.json"


def journal_path(tenant: str, txid: str, event_id: int) -> str:
    # Zero-padded so names sort in commit order; named by the pass's first event of the tenant, so
    # a pass repeated after a crash rewrites the same object (with the same events, or more).
    return f"{segment(tenant)}/journal/{int(txid):020d}-{event_id:020d}.jsonl"


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def dumps(doc: Any) -> bytes:
    return (json.dumps(jsonable(doc), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def task_document(row: dict[str, Any], depends_on: list[str], parent_key: str | None) -> bytes:
    doc = {k: v for k, v in row.items() if k not in DERIVED_TASK_COLUMNS}
    doc["depends_on"] = sorted(depends_on)
    doc["parent"] = parent_key
    return dumps(doc)


def handoff_document(row: dict[str, Any], direction: str | None) -> bytes:
    """Markdown a person can read: `field: <JSON value>` lines between `---`, then the content."""
    fields = {**row, "direction": direction}
    head = "\n".join(f"{name}: {json.dumps(jsonable(fields.get(name)), ensure_ascii=False)}" for name in HANDOFF_FIELDS)
    return f"---\n{head}\n---\n\n{row['content']}".encode()


def parse_handoff(raw: bytes) -> dict[str, Any]:
    """The row of a handoff document (front matter values as JSON, content after the blank line)."""
    text = raw.decode()
    if not text.startswith("---\n"):
        raise ValueError("a handoff document starts with a front matter between '---' lines")
    head, _, rest = text[4:].partition("\n---\n")
    row: dict[str, Any] = {}
    for line in head.splitlines():
        name, _, value = line.partition(": ")
        row[name] = json.loads(value)
    row["content"] = rest[1:] if rest.startswith("\n") else rest
    return row


def journal_lines(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(jsonable(r), sort_keys=True, ensure_ascii=False).encode() + b"\n" for r in rows)
