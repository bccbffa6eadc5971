"""`tracker restore --from URL`: a tenant rebuilt from its backup objects into an empty database.

The objects hold `tracker export` records (backup.objects), so restoring is reading them back into
records and running the import (domain.transfer.importing) in one transaction: all or nothing.
The journal's events come back in commit order, with new ids.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from sqlalchemy import Connection, text

from tracker_service.backup import objects
from tracker_service.backup.store import BackupStore
from tracker_service.domain.transfer.importing import ImportReport, import_rows, parse_records
from tracker_service.domain.transfer.records import KINDS
from tracker_service.errors import Conflict, InvalidRequest

_HAS_DATA = text(
    "SELECT EXISTS (SELECT 1 FROM tasks WHERE tenant = :t) OR EXISTS (SELECT 1 FROM handoffs WHERE tenant = :t)"
    " OR EXISTS (SELECT 1 FROM id_counters WHERE tenant = :t)"
)


def backed_up_tenants(store: BackupStore) -> list[str]:
    """The tenants the store holds (its top-level names)."""
    try:
        paths = store.find("")
    except FileNotFoundError:
        return []
    return sorted({objects.unsegment(p.split("/", 1)[0]) for p in paths if "/" in p})


def tenant_records(store: BackupStore, tenant: str) -> list[dict[str, Any]]:
    """Every record of the tenant's objects, kinds in the order the import writes them."""
    prefix = objects.segment(tenant)
    try:
        paths = store.find(prefix)
    except FileNotFoundError:
        paths = []
    if not paths:
        raise InvalidRequest(f"the backup at {store.url} holds nothing of tenant {tenant!r}")
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in paths:  # sorted: journal segments in commit order
        parts = path[len(prefix) + 1 :].split("/")
        for record in _records_of(parts, store.get(path)):
            by_kind[record["kind"]].append(record)
    _drop_dangling(by_kind)
    return [r for kind in KINDS for r in by_kind.get(kind, [])]


def _drop_dangling(by_kind: dict[str, list[dict[str, Any]]]) -> None:
    """What the database let go of and the objects still name: deleting a task removes the
    dependencies on it without an event for the tasks that had them, so their objects keep them;
    conversations are not backed up, so a task's link to one cannot come back."""
    tasks = {t["id"] for t in by_kind.get("task", [])}
    by_kind["task_dependency"] = [d for d in by_kind.get("task_dependency", []) if d["depends_on_id"] in tasks]
    for task in by_kind.get("task", []):
        task["conversation_id"] = None


def _records_of(parts: list[str], raw: bytes) -> list[dict[str, Any]]:
    if parts[0] == "journal":
        lines = [json.loads(line) for line in raw.decode().split("\n") if line]
        return [{k: v for k, v in line.items() if k != "position"} for line in lines]
    if parts[1:] == ["ids.json"]:
        doc = json.loads(raw)
        return [*doc["counters"], *doc["free"], *doc["reservations"]]
    if parts[1:] == ["settings.json"]:
        return [json.loads(raw)]
    if len(parts) == 3 and parts[1] == "tasks":
        task, deps = objects.task_record(json.loads(raw))
        return [task, *deps]
    if len(parts) == 3 and parts[1] == "handoffs":
        return [objects.handoff_record(objects.parse_handoff(raw))]
    return []  # not one of ours: left alone


def restore_tenant(conn: Connection, store: BackupStore, tenant: str) -> ImportReport:
    """Import the tenant's records in the caller's transaction; refuses a tenant that has data."""
    if conn.execute(_HAS_DATA, {"t": tenant}).scalar_one():
        raise Conflict(
            f"tenant {tenant!r} already has tasks, handoffs or IDs in this database; restore into an empty "
            "database (or merge a dump with `tracker import`)"
        )
    records = tenant_records(store, tenant)
    rows = parse_records(enumerate(records, 1), tenant)
    return import_rows(conn, rows, tenant=tenant)
