"""Import from any supported format, for the CLI and POST /import alike: read, check, merge."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from tracker_service.domain.keys.service import Principal
from tracker_service.domain.transfer.importing import ImportReport, import_rows, parse_lines, parse_records
from tracker_service.domain.transfer.schemas import ImportIn, ImportReportOut
from tracker_service.domain.transfer.sources import IMPORTERS
from tracker_service.errors import Forbidden, InvalidRequest

FORMATS: tuple[str, ...] = ("dump", *IMPORTERS)


def read_rows(
    format_: str,
    *,
    tenant: str | None,
    project: str | None = None,
    content: str | None = None,
    records: list[dict[str, Any]] | None = None,
) -> list[Any]:
    """The checked rows of a dump (its text or its records) or of another tracker's file (its text).

    Lines end at a line feed only: a record's text may hold U+2028 and other characters str.splitlines
    would break at."""
    if format_ == "dump":
        if project is not None:
            raise InvalidRequest("project is for taskmaster, beads and todo files; a dump's records name theirs")
        if records is not None:
            if content is not None:
                raise InvalidRequest("a dump is sent as content or as records, not both")
            return parse_records(enumerate(records, 1), tenant)
        return parse_lines((content or "").split("\n"), tenant)
    if format_ not in IMPORTERS:
        raise InvalidRequest(f"format must be one of {', '.join(FORMATS)}, got {format_!r}")
    if project is None:
        raise InvalidRequest(f"importing a {format_} file needs the project to put its tasks in")
    if tenant is None:
        raise InvalidRequest(f"importing a {format_} file needs the tenant to put its tasks in")
    if records is not None or content is None:
        raise InvalidRequest(f"a {format_} file is sent as content, the file's text")
    return parse_records(IMPORTERS[format_](content, project), tenant)


def import_into(conn: Connection, rows: list[Any], *, tenant: str | None, dry_run: bool = False) -> ImportReport:
    """Merge the rows in the caller's transaction (undone again on a dry run)."""
    return import_rows(conn, rows, tenant=tenant, dry_run=dry_run)


class TransferService:
    """POST /import: the caller's tenant only, in the request's transaction."""

    def __init__(self, conn: AsyncConnection, principal: Principal) -> None:
        self.conn, self.principal = conn, principal

    async def import_(self, data: ImportIn) -> ImportReportOut:
        tenant = self.principal.tenant
        if data.format == "dump" and not self.principal.allows("admin"):
            # A dump writes the activity log, ID counters and released IDs as given: an
            # administrator's act, like restoring. Another tracker's file only adds tasks.
            raise Forbidden(
                f"importing a dump needs an admin key (this key has role '{self.principal.role}'); "
                "taskmaster, beads and todo files need write"
            )
        rows = read_rows(data.format, tenant=tenant, project=data.project, content=data.content, records=data.records)
        report = await self.conn.run_sync(lambda conn: import_into(conn, rows, tenant=tenant, dry_run=data.dry_run))
        return ImportReportOut.model_validate(report.as_dict())
