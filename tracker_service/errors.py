"""The one error tree. Services raise these; one handler renders RFC 9457 problem+json."""

from __future__ import annotations

from typing import Any


class TrackerError(Exception):
    status: int = 500
    code: str = "SERVER_ERROR"
    title: str = "Internal server error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


class InvalidRequest(TrackerError):
    status, code, title = 400, "INVALID_REQUEST", "Invalid request"


class InvalidTransition(TrackerError):
    status, code, title = 400, "INVALID_TRANSITION", "Invalid status transition"


class Unauthorized(TrackerError):
    status, code, title = 401, "UNAUTHORIZED", "Unauthorized"

    def __init__(self, detail: str, invalid_token: bool = False, **extra: Any) -> None:
        super().__init__(detail, **extra)
        # RFC 6750: say which scheme to use, and that the key sent was refused when one was.
        challenge = 'Bearer realm="tracker"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(TrackerError):
    status, code, title = 403, "FORBIDDEN", "Forbidden"


class NotFound(TrackerError):
    status, code, title = 404, "NOT_FOUND", "Not found"


class TaskNotFound(NotFound):
    code, title = "TASK_NOT_FOUND", "Task not found"


class HandoffNotFound(NotFound):
    code, title = "HANDOFF_NOT_FOUND", "Handoff not found"


class ConversationNotFound(NotFound):
    code, title = "CONVERSATION_NOT_FOUND", "Conversation not found"


class ReservationNotFound(NotFound):
    code, title = "RESERVATION_NOT_FOUND", "Reservation not found"


class Conflict(TrackerError):
    status, code, title = 409, "CONFLICT", "Conflict"


class AmbiguousKey(Conflict):
    code, title = "AMBIGUOUS_KEY", "Ambiguous task key"


class DuplicateKey(Conflict):
    code, title = "DUPLICATE_KEY", "Duplicate key"


class DependencyCycle(Conflict):
    code, title = "DEPENDENCY_CYCLE", "Dependency cycle"


class ReviewRequired(Conflict):
    code, title = "REVIEW_REQUIRED", "Review required"


class OpenChildren(Conflict):
    code, title = "OPEN_CHILDREN", "Open children"


class SelfReview(Forbidden):
    code, title = "SELF_REVIEW", "Review by the worker"


class NotAReviewer(Forbidden):
    code, title = "NOT_A_REVIEWER", "Not a reviewer"


class IdempotencyKeyReused(TrackerError):
    status, code, title = 422, "IDEMPOTENCY_KEY_REUSED", "Idempotency key reused"


class RateLimited(TrackerError):
    status, code, title = 429, "RATE_LIMITED", "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class Timeout(TrackerError):
    status, code, title = 504, "TIMEOUT", "Timeout"


class DatabaseUnavailable(TrackerError):
    status, code, title = 503, "DATABASE_UNAVAILABLE", "Database unavailable"


class BackupUnavailable(TrackerError):
    """The backup store could not be reached or refused a write (the syncer retries; restore stops)."""

    status, code, title = 503, "BACKUP_UNAVAILABLE", "Backup store unavailable"
