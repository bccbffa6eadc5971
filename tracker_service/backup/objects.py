"""What the backup store holds and where: pure functions from rows to (path, bytes) and back.

Layout, under the store's root:
  <tenant>/<project>/tasks/<key>.json        a task: its columns, with dependencies and parent by key
  <tenant>/<project>/handoffs/<id>.md        a handoff: front matter (one JSON value per line), then content
  <tenant>/<project>/ids.json                the project's ID counters, free IDs and reservations
  <tenant>/<project>/settings.json           the project's settings (review)
  <tenant>/journal/<txid>-<id>.jsonl         the events of one sync pass, one JSON line each

Each object holds records of `tracker export` (domain.transfer.records), so `tracker restore` reads
them back with the import. Path segments are percent-encoded, so any tenant, project or key name
is one safe segment. The tenant-wide scope of ID counters (task keys, project "") is "@tenant"; a
project named so is encoded as "%40tenant".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote

from tracker_service.domain.transfer.records import dumps as records_dumps
from tracker_service.domain.transfer.records import record_of

TENANT_SCOPE_SEGMENT = "@tenant"
# What a task document has beside the task's record (tracker_service.domain.transfer.records).
TASK_EXTRAS = frozenset({"depends_on", "depends_on_ids", "parent"})


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


def dumps(doc: Any) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def task_document(row: Mapping[str, Any], depends_on: list[tuple[str, Any]], parent_key: str | None) -> bytes:
    """The task's record, plus its dependencies and parent by key for a reader (and by id for restore)."""
    doc = record_of("task", row)
    doc["depends_on"] = sorted(key for key, _ in depends_on)
    doc["depends_on_ids"] = sorted(str(i) for _, i in depends_on)
    doc["parent"] = parent_key
    return dumps(doc)


def task_record(doc: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A task document back to its record and its dependencies' records."""
    deps = [{"kind": "task_dependency", "task_id": doc["id"], "depends_on_id": i} for i in doc["depends_on_ids"]]
    return {k: v for k, v in doc.items() if k not in TASK_EXTRAS}, deps


def handoff_document(row: Any, direction: str | None) -> bytes:
    """Markdown a person can read: `field: <JSON value>` lines between `---`, then the content."""
    fields = {**record_of("handoff", row), "direction": direction}
    head = "\n".join(
        f"{name}: {json.dumps(value, ensure_ascii=False)}" for name, value in fields.items() if name != "content"
    )
    return f"---\n{head}\n---\n\n{row['content']}".encode()


def parse_handoff(raw: bytes) -> dict[str, Any]:
    """The fields of a handoff document (front matter values as JSON, content after the blank line)."""
    text = raw.decode()
    if not text.startswith("---\n"):
        raise ValueError("a handoff document starts with a front matter between '---' lines")
    head, _, rest = text[4:].partition("\n---\n")
    fields: dict[str, Any] = {}
    for line in head.splitlines():
        name, _, value = line.partition(": ")
        fields[name] = json.loads(value)
    fields["content"] = rest[1:] if rest.startswith("\n") else rest
    return fields


def handoff_record(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k != "direction"}


def ids_document(counters: list[Any], free: list[Any], reservations: list[Any]) -> bytes:
    return dumps(
        {
            "counters": [record_of("id_counter", r) for r in counters],
            "free": [record_of("id_free", r) for r in free],
            "reservations": [record_of("id_reservation", r) for r in reservations],
        }
    )


def journal_lines(events: list[Mapping[str, Any]]) -> bytes:
    """One event record per line, with its place in the log (txid.id, as the live stream's ids)."""
    return b"".join(
        (records_dumps({**record_of("event", e), "position": f"{e['txid']}.{e['id']}"}) + "\n").encode() for e in events
    )
