"""The tracker: tasks, handoffs and sequential IDs shared by AI agents, on PostgreSQL."""

__version__ = "0.1.0"
