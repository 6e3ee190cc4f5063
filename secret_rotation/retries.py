"""Retries for transient faults, with tenacity, as the single retry mechanism of the service.

The SDK clients are built with their own retries off (`retry_total=0`) so that one policy decides:
retry throttling (429), server errors (5xx) and connection faults, honour `Retry-After`, and stop
within a time budget that keeps a worker well inside the function timeout. After that the error goes
up as a `TransientError` and the queue redelivers the message later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

T = TypeVar("T")

_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    return isinstance(exc, HttpResponseError) and exc.status_code in _RETRYABLE_STATUS


def retry_after_seconds(exc: BaseException | None) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    for header, scale in (("retry-after-ms", 1000.0), ("x-ms-retry-after-ms", 1000.0), ("Retry-After", 1.0)):
        raw = headers.get(header)
        if raw:
            try:
                return max(0.0, float(raw) / scale)
            except ValueError:
                return None  # an HTTP date: fall back to the backoff
    return None


class RetryPolicy:
    def __init__(
        self,
        *,
        attempts: int = 5,
        budget_seconds: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._attempts = attempts
        self._budget = budget_seconds
        self._sleep = sleep
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=10.0)

    def _wait(self, state: RetryCallState) -> float:
        hinted = retry_after_seconds(state.outcome.exception() if state.outcome else None)
        return hinted if hinted is not None else self._backoff(state)

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts) | stop_before_delay(self._budget),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            sleep=self._sleep,
            reraise=True,
        )

        # tenacity awaits only coroutine functions; a lambda returning a coroutine would not be awaited.
        async def attempt() -> T:
            return await operation()

        return await retrying(attempt)
