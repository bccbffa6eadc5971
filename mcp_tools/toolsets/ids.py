"""ID tools (spec 001): allocate one sequential ID, or reserve a range.

There is deliberately no "peek" tool: an ID read but not allocated is what two agents end up
both using. ``get_next_available_id`` allocates, so the ID it returns is yours.
"""

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from ..client import TrackerClient
from ..models import Reservation
from .common import CREATE, ProjectId, tool

ArtifactType = Annotated[str, Field(min_length=1, description="ID prefix: US, SPEC, TASK...")]


def register(server: MCPServer, client: TrackerClient) -> None:
    @tool(server, CREATE)
    def get_next_available_id(artifact_type: ArtifactType, project_id: ProjectId) -> str:
        """Allocate the next sequential ID of a type in a project and return it, e.g. "US-028".

        Atomic: two agents never get the same ID. Each call uses one up.
        """
        return client.allocate_id(artifact_type, project_id)

    @tool(server, CREATE)
    def reserve_id_range(
        artifact_type: ArtifactType,
        count: Annotated[int, Field(ge=1, le=100, description="How many consecutive IDs (1-100).")],
        project_id: ProjectId,
    ) -> Reservation:
        """Reserve consecutive IDs at once, e.g. US-028..US-033, for one batch of artifacts.

        Returns reserved_ids with a reservation_id and expires_at.
        """
        return client.reserve_ids(artifact_type, count, project_id)
