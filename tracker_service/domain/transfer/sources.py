"""Other trackers' files as records: Task Master's tasks.json, Beads' issues.jsonl, a TODO.md.

Each importer gives (number, record) pairs that go through the same checks and the same import
as a dump. Keys come from the source (TM-3, TM-3.1; the Beads id; TODO-7), so importing the same
file again finds the same tasks (unchanged, or a conflict where they differ) instead of copies.
Times are left to the database; ids are drawn in ascending order so that tasks created in the
same instant still list in the file's order.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from tracker_service.domain.tasks.schemas import KEY_PATTERN
from tracker_service.errors import InvalidRequest

Numbered = list[tuple[int, dict[str, Any]]]

TASKMASTER_STATUS = {
    "pending": "pending",
    "in-progress": "in_progress",
    "done": "completed",
    "review": "in_review",
    "deferred": "blocked",  # postponed: not to be picked up until someone reopens it
    "cancelled": "cancelled",
    "blocked": "blocked",
}
BEADS_STATUS = {"open": "pending", "in_progress": "in_progress", "blocked": "blocked", "closed": "completed"}
BEADS_PRIORITY = ("critical", "high", "medium", "low", "low")  # bd priority 0..4
PRIORITIES = ("critical", "high", "medium", "low")
_KEY = re.compile(KEY_PATTERN)
_TAG_MAX = 50


class _Builder:
    """Task and dependency records of one file, ids ascending, references by source key."""

    def __init__(self, project: str, what: str) -> None:
        self.project, self.what = project, what
        self.tasks: list[tuple[int, dict[str, Any]]] = []
        self.deps: list[tuple[int, str, str]] = []
        self.by_key: dict[str, dict[str, Any]] = {}

    def task(self, number: int, key: str, title: Any, **fields: Any) -> dict[str, Any]:
        if not isinstance(title, str) or not title.strip():
            raise self.error(number, key, "title", "must be a non-empty string")
        if not _KEY.match(key):
            raise self.error(number, key, "id", f"makes the key {key!r}, which is not letters, digits, '.', '_', '-'")
        if key in self.by_key:
            raise self.error(number, key, "id", "appears twice")
        record = {"kind": "task", "project": self.project, "key": key, "title": title.strip(), "tags": [], **fields}
        self.tasks.append((number, record))
        self.by_key[key] = record
        return record

    def depends(self, number: int, key: str, on: str) -> None:
        self.deps.append((number, key, on))

    def error(self, number: int, key: str, field: str, message: str) -> InvalidRequest:
        detail = f"{self.what} {number} ({key}): {field} {message}"
        return InvalidRequest(detail, errors=[{"line": number, "field": field, "message": message}])

    def records(self) -> Numbered:
        ids = sorted(uuid.uuid4() for _ in self.tasks)
        for (_, record), id_ in zip(self.tasks, ids, strict=True):
            record["id"] = str(id_)
        out: Numbered = list(self.tasks)
        for number, key, on in self.deps:
            if on not in self.by_key:
                raise self.error(number, key, "dependencies", f"name {on}, which is not in the file")
            if on == key:
                raise self.error(number, key, "dependencies", "name the task itself")
            task_id, on_id = self.by_key[key]["id"], self.by_key[on]["id"]
            out.append((number, {"kind": "task_dependency", "task_id": task_id, "depends_on_id": on_id}))
        for number, record in self.tasks:
            parent_key = record.pop("parent_key", None)
            if parent_key is not None:
                if parent_key not in self.by_key:
                    raise self.error(number, record["key"], "parent", f"names {parent_key}, which is not in the file")
                record["parent_id"] = self.by_key[parent_key]["id"]
        return out


def _text(*parts: tuple[str, Any]) -> str | None:
    """Labelled free-text fields joined into one, the first without its label; None when all empty."""
    kept = [(label, v.strip()) for label, v in parts if isinstance(v, str) and v.strip()]
    if not kept:
        return None
    return "\n\n".join(v if i == 0 and not label else f"{label}:\n{v}" for i, (label, v) in enumerate(kept))


def _tag(text: str) -> str:
    return text.strip()[:_TAG_MAX].strip()


def taskmaster(content: str, project: str) -> Numbered:
    """Task Master's tasks.json: {"master": {"tasks": [...]}, "<tag>": {...}} or legacy {"tasks": [...]}."""
    try:
        doc = json.loads(content)
    except ValueError as exc:
        raise InvalidRequest(f"tasks.json is not JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("tasks"), list):
        contexts = {"master": doc}
    elif isinstance(doc, dict) and all(isinstance(v, dict) and isinstance(v.get("tasks"), list) for v in doc.values()):
        contexts = doc
    else:
        raise InvalidRequest('tasks.json must be {"master": {"tasks": [...]}} or {"tasks": [...]}')
    b = _Builder(project, "task")
    number = 0
    for context, body in contexts.items():
        prefix = "TM-" if context == "master" else f"TM-{re.sub(r'[^A-Za-z0-9._-]', '_', context)}-"
        tags = [] if context == "master" else [_tag(context)]
        for task in body["tasks"]:
            number += 1
            number = _taskmaster_task(b, number, task, prefix, tags, parent=None)
    return b.records()


def _taskmaster_task(b: _Builder, number: int, task: Any, prefix: str, tags: list[str], parent: str | None) -> int:
    if not isinstance(task, dict) or "id" not in task:
        raise InvalidRequest(f"task {number}: must be an object with an id")
    local = str(task["id"])
    key = f"{prefix}{local}" if parent is None else f"{parent}.{local}"
    status = TASKMASTER_STATUS.get(str(task.get("status", "pending")))
    if status is None:
        raise b.error(number, key, "status", f"{task.get('status')!r} is not one of {', '.join(TASKMASTER_STATUS)}")
    priority = task.get("priority") or "medium"
    if priority not in PRIORITIES:
        raise b.error(number, key, "priority", f"{priority!r} is not one of {', '.join(PRIORITIES)}")
    notes = _text(("", task.get("details")), ("Test strategy", task.get("testStrategy")))
    fields: dict[str, Any] = {"priority": priority, "status": status, "tags": list(tags), "notes": notes}
    fields["description"] = task.get("description") or None
    if parent is not None:
        fields["parent_key"] = parent
    b.task(number, key, task.get("title"), **fields)
    for dep in task.get("dependencies") or []:
        # A subtask's number names a sibling; "3.1" names any subtask; at the top, a number a task.
        on = f"{prefix}{dep}" if parent is None or (isinstance(dep, str) and "." in dep) else f"{parent}.{dep}"
        b.depends(number, key, on)
    for sub in task.get("subtasks") or []:
        number = _taskmaster_task(b, number + 1, sub, prefix, tags, parent=key)
    return number


def beads(content: str, project: str) -> Numbered:
    """Beads' issues.jsonl (bd): one issue a line; "blocks" dependencies and "parent-child" parents."""
    b = _Builder(project, "line")
    for number, line in enumerate(content.split("\n"), 1):
        if not line.strip():
            continue
        try:
            issue = json.loads(line)
        except ValueError as exc:
            raise InvalidRequest(f"line {number}: not JSON: {exc}") from None
        if not isinstance(issue, dict) or not isinstance(issue.get("id"), str):
            raise InvalidRequest(f"line {number}: an issue must be an object with a string id")
        _beads_issue(b, number, issue)
    return b.records()


def _beads_issue(b: _Builder, number: int, issue: dict[str, Any]) -> None:
    key = issue["id"]
    status = BEADS_STATUS.get(issue.get("status", "open"))
    if status is None:
        raise b.error(number, key, "status", f"{issue.get('status')!r} is not one of {', '.join(BEADS_STATUS)}")
    level = issue.get("priority", 2)
    if isinstance(level, bool) or not isinstance(level, int) or not 0 <= level <= 4:
        raise b.error(number, key, "priority", "must be a number from 0 to 4")
    tags = [_tag(t) for t in issue.get("labels") or [] if isinstance(t, str) and t.strip()]
    if isinstance(issue.get("issue_type"), str):
        tags.insert(0, _tag(issue["issue_type"]))
    notes = _text(
        ("", issue.get("notes")), ("Design", issue.get("design")), ("Acceptance", issue.get("acceptance_criteria"))
    )
    fields: dict[str, Any] = {"priority": BEADS_PRIORITY[level], "status": status, "tags": list(dict.fromkeys(tags))}
    fields.update(description=issue.get("description") or None, notes=notes, assigned_to=issue.get("assignee") or None)
    for dep in issue.get("dependencies") or []:
        if not isinstance(dep, dict):
            raise b.error(number, key, "dependencies", "must be objects")
        kind, on = dep.get("type", "blocks"), dep.get("depends_on_id")
        if not isinstance(on, str):
            raise b.error(number, key, "dependencies", "need a depends_on_id string")
        if kind == "blocks":
            b.depends(number, key, on)
        elif kind == "parent-child":
            fields["parent_key"] = on
    b.task(number, key, issue.get("title"), **fields)


_ITEM = re.compile(r"^(?P<indent>[ \t]*)[-*+] \[(?P<mark>[ xX])\] (?P<text>.*\S)\s*$")
_HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<text>.*\S)\s*$")


def todo(content: str, project: str) -> Numbered:
    """A markdown checklist: `- [ ]` open, `- [x]` done; deeper items are children; headings tag."""
    b = _Builder(project, "line")
    headings: list[tuple[int, str]] = []
    open_items: list[tuple[int, str]] = []  # (indent, key) of the items above, outermost first
    count = 0
    for number, line in enumerate(content.splitlines(), 1):
        heading = _HEADING.match(line)
        if heading:
            level = len(heading["level"])
            headings = [h for h in headings if h[0] < level] + [(level, _tag(heading["text"]))]
            open_items = []
            continue
        item = _ITEM.match(line)
        if not item:
            continue
        count += 1
        indent = len(item["indent"].expandtabs(4))
        while open_items and open_items[-1][0] >= indent:
            open_items.pop()
        key = f"TODO-{count}"
        fields: dict[str, Any] = {
            "priority": "medium",
            "status": "pending" if item["mark"] == " " else "completed",
            "tags": list(dict.fromkeys(t for _, t in headings)),
        }
        if open_items:
            fields["parent_key"] = open_items[-1][1]
        b.task(number, key, item["text"].strip(), **fields)
        open_items.append((indent, key))
    return b.records()


IMPORTERS: dict[str, Callable[[str, str], Numbered]] = {"taskmaster": taskmaster, "beads": beads, "todo": todo}
