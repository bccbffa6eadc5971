"""Retry policy of the bridge's one ``requests.Session``, in the adapter (never a loop per tool).

- Up to 3 retries after the first attempt, backing off 100, 200, 400 ms, on connection errors
  and on 429/500/502/503; a 429 or 503 ``Retry-After`` is honoured (capped, see below).
- A read timeout, and a 504, are not retried: the caller has already waited the whole timeout
  once (a sync ``delegate_task`` answers 504 after waiting for its worker; each retry would wait
  that long again).
- GET/HEAD/DELETE (idempotent by HTTP) are always retryable. POST/PUT/PATCH are retried only when the request
  carries an ``Idempotency-Key``: the tracker replays the first answer for a repeat, so a
  retry can never create a second task or allocate a second ID. A write without the header is
  sent once (a refused *connection* is still retried: nothing reached the server).
- ``raise_on_status=False``: after the last retry the final response comes back as it is, so
  the error mapper sees the real status and problem detail instead of a ``RetryError``.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import ReadTimeoutError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

IDEMPOTENCY_HEADER = "Idempotency-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})
RETRY_STATUSES = frozenset({429, 500, 502, 503})


class BackoffRetry(Retry):
    """``Retry`` whose n-th retry waits ``backoff_factor * 2**(n-1)`` (urllib3 waits 0 the first time)."""

    RETRY_AFTER_STATUS_CODES = frozenset({429, 503})
    #: Longest ``Retry-After`` honoured; a longer one is cut to this so a tool call stays bounded.
    max_retry_after: float = 5.0

    def get_backoff_time(self) -> float:
        errors = 0
        for attempt in reversed(self.history):
            if attempt.redirect_location is not None:
                break
            errors += 1
        if errors == 0:
            return 0.0
        return float(min(self.backoff_max, self.backoff_factor * 2 ** (errors - 1)))

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.max_retry_after)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        if isinstance(error, ReadTimeoutError):
            raise error
        return super().increment(method, url, response, error, _pool, _stacktrace)


def default_retry(total: int = 3, backoff: float = 0.1) -> BackoffRetry:
    return BackoffRetry(
        total=total,
        connect=total,
        read=total,
        status=total,
        other=0,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=IDEMPOTENT_METHODS | WRITE_METHODS,
        respect_retry_after_header=True,
        raise_on_status=False,
        raise_on_redirect=False,
    )


class IdempotentRetryAdapter(HTTPAdapter):
    """``HTTPAdapter`` that retries a write only when it carries an ``Idempotency-Key``."""

    def __init__(self, retry: Retry, pool_maxsize: int = 10) -> None:
        super().__init__(max_retries=retry, pool_maxsize=pool_maxsize)
        # Same connection pool, a policy that never resends an unkeyed write.
        self._unkeyed = HTTPAdapter(max_retries=retry.new(allowed_methods=IDEMPOTENT_METHODS))
        self._unkeyed.poolmanager = self.poolmanager

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        if request.method in WRITE_METHODS and IDEMPOTENCY_HEADER not in request.headers:
            return self._unkeyed.send(request, *args, **kwargs)
        return super().send(request, *args, **kwargs)
