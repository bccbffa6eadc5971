"""ID tools (spec 001): allocate one sequential ID, or reserve a range.

There is deliberately no "peek" tool: an ID read but not allocated is what two agents end up
both using. ``get_next_available_id`` allocates, so the ID it returns is yours.
"""

from typing import Annotated

from pydantic import Field

from ..client import TrackerClient
from ..models import Reservation
from .common import CREATE, Catalogue, ProjectId

TOOLSET = "ids"
ArtifactType = Annotated[str, Field(min_length=1)]  # the ID's prefix (guidance.CONVENTIONS)


def register(tools: Catalogue, client: TrackerClient) -> None:
    @tools.tool(TOOLSET, CREATE)
    def get_next_available_id(artifact_type: ArtifactType, project_id: ProjectId) -> str:
        """Allocate the next ID of a type in a project, e.g. US-028; never given twice."""
        return client.allocate_id(artifact_type, project_id)

    @tools.tool(TOOLSET, CREATE)
    def reserve_id_range(
        artifact_type: ArtifactType,
        count: Annotated[int, Field(ge=1, le=100)],
        project_id: ProjectId,
    ) -> Reservation:
        """Reserve consecutive IDs for a batch, e.g. US-028..US-033."""
        return client.reserve_ids(artifact_type, count, project_id)
