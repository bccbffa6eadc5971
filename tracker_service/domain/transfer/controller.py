from __future__ import annotations

from litestar import Controller, post
from litestar.di import NamedDependency, Provide
from litestar.params import JSONBody

from tracker_service.domain.transfer.schemas import ImportIn, ImportReportOut
from tracker_service.domain.transfer.service import TransferService
from tracker_service.web.deps import provide_transfer


class ImportController(Controller):
    path = "/import"
    tags = ["import"]
    dependencies = {"transfer": Provide(provide_transfer, sync_to_thread=False)}

    @post("/", status_code=200)
    async def import_data(
        self, transfer: NamedDependency[TransferService], data: JSONBody[ImportIn]
    ) -> ImportReportOut:
        """Import a dump or a Task Master, Beads or TODO.md file into your tenant, merged by key, all or nothing."""
        return await transfer.import_(data)
