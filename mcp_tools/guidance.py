"""What the server teaches: instructions for the model, and prompts clients show as slash commands.

Instructions are sent once per session in `initialize`; clients cut them at 2,048 characters, so
each surface's text stays under that (tests/mcp/test_guidance.py). They name only tools the
surface offers. Prompts are templates a person picks (`/start_next_task`...): they ask the model
to use the tools, and change nothing by themselves.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from .config import Surface

INSTRUCTIONS_LIMIT = 2_048

_ABOUT = (
    "Shared tracker for AI agents and the people who run them: tasks with priorities, "
    "dependencies and leases, handoffs between agents, and sequential IDs. "
    "Projects are plain names; a task is named by its key (TASK-012) or UUID.\n"
)

# Per toolset: what to say when it may write, and when the surface is read-only (None: nothing).
_PARTS: tuple[tuple[str, str, str | None], ...] = (
    (
        "tasks",
        "Work loop (agent = your name; a task another agent holds is refused):\n"
        "1. get_next_task(project_id, claim=true, agent) leases the highest-priority ready task to "
        "you. A null task comes with a hint saying why; do not invent work.\n"
        "2. Working past the lease (15 min by default)? heartbeat_task(task_id, agent) keeps it. "
        "A lapsed lease returns the task to the queue and a late update gets a conflict.\n"
        "3. Finish with update_task_status(task_id, 'completed', completion_notes=what you did and "
        "how you checked it). A task that requires review goes to 'in_review' instead: someone "
        "else approves it. Stuck: 'blocked' with notes; giving up: 'pending' releases it.\n"
        "4. Split work with add_task(parent=<key>, same project); depends_on=[keys] must be "
        "completed first.\n",
        "Read the queue with list_tasks (filters: status, assigned_to, parent) and get_task; "
        "get_next_task shows the task a claim would take.\n",
    ),
    (
        "handoffs",
        "Hand work or news to another agent or a person with create_handoff(project_id, "
        "task=<slug>, to_agent, content=markdown). Check yours with list_handoffs(to_agent=<you>, "
        "status='pending'), then update_handoff_status to 'read' or 'processed'.\n",
        "Read handoffs with list_handoffs and get_handoff (long markdown comes in pieces).\n",
    ),
    (
        "ids",
        "Need an ID for an artifact (US-028, ADR-004)? get_next_available_id or reserve_id_range, "
        "artifact_type = its prefix (US, ADR); never guess or reuse a number.\n",
        None,
    ),
    (
        "activity",
        "get_log shows what happened lately (claims, finished work, handoffs); delegate_task hands "
        "a prompt to a worker process.\n",
        "get_log shows what happened lately (claims, finished work, handoffs).\n",
    ),
)

_PAGING = (
    "Lists return summaries and a next_cursor: pass it as cursor for more. List filters take a,b "
    "for either; times are ISO 8601; descriptions and content are markdown. Errors say what to do "
    "next: follow them instead of retrying the same call."
)
#: Parameters whose meaning the instructions give once for every tool that takes them (checked by
#: the tests on every surface offering such a tool).
CONVENTIONS = {
    "task_id": "a task is named by its key (TASK-012) or UUID",
    "cursor": "pass it as cursor",
    "status": "List filters take a,b",
    "status_filter": "List filters take a,b",
    "priority": "List filters take a,b",
    "direction": "List filters take a,b",
    "since": "times are ISO 8601",
    "due_date": "times are ISO 8601",
    "description": "descriptions and content are markdown",
    "content": "descriptions and content are markdown",
    # Said in the part of the toolset whose tools take them.
    "agent": "agent = your name",
    "completion_notes": "completion_notes=what you did",
    "parent": "add_task(parent=<key>, same project)",
    "depends_on": "depends_on=[keys] must be completed first",
    "artifact_type": "artifact_type = its prefix",
}


def instructions(surface: Surface) -> str:
    """The instructions for what `surface` offers: the writing workflow only where writes are allowed."""
    chosen = []
    for toolset, writing, reading in _PARTS:
        if toolset in surface.toolsets:
            text = reading if surface.read_only else writing
            if text:
                chosen.append(text)
    return _ABOUT + "".join(chosen) + _PAGING


def register_prompts(server: MCPServer, surface: Surface) -> None:
    """Slash commands for the work the surface allows."""
    if "tasks" in surface.toolsets and not surface.read_only:

        @server.prompt(title="Take the next task", description="Claim the next task of a project and start on it")
        def start_next_task(project: str, agent: str) -> str:
            return (
                f"Take the next task of project {project!r} as agent {agent!r}: call get_next_task with "
                f"project_id={project!r}, claim=true, agent={agent!r}. If it returns no task, tell me its "
                "hint and stop. Otherwise read the task (get_task for its dependencies and parent), say in "
                "two lines what you will do, and do it. Heartbeat if it takes longer than the lease. When "
                "done, set its status with notes on what you did and how you checked it ('in_review' if it "
                "requires review, else 'completed'); if you cannot finish, set 'blocked' with the reason."
            )

    if "tasks" in surface.toolsets:
        recent = "get_log for the project's recent events" if "activity" in surface.toolsets else "completed"

        @server.prompt(title="Stand-up summary", description="Summarise a project's state for a stand-up")
        def standup(project: str) -> str:
            return (
                f"Summarise project {project!r} for a stand-up. Use list_tasks with project_id={project!r} "
                f"for each of in_progress, in_review, blocked and pending (first page each), and {recent}. "
                "Report, briefly: who holds what (with leases about to lapse), what waits for review, what "
                "is blocked and why, what was finished lately, and the top of the queue. Name tasks by key."
            )

    if "handoffs" in surface.toolsets and not surface.read_only:

        @server.prompt(title="Write a handoff", description="Hand the current state of work to another agent")
        def write_handoff(project: str, topic: str, to_agent: str) -> str:
            return (
                f"Write a handoff to {to_agent!r} in project {project!r} about {topic!r}: what was done, "
                "what is left, decisions made and why, open questions, and the task keys involved. Use "
                "markdown with short sections. Send it with create_handoff (task: a short slug of the "
                "topic), then tell me its id."
            )
