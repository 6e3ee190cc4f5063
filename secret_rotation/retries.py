"""Retries for transient faults, with tenacity, as the single retry mechanism of the service.

The SDK clients are built with their own retries off (`retry_total=0`) so that one policy decides:
retry throttling (429), server errors (5xx) and connection faults, honour `Retry-After`, and stop
within a time budget that keeps a worker well inside the function timeout. After that the error goes
up as a `TransientError` and the queue redelivers the message later.

A 429 without `Retry-After` backs off as Microsoft's Key Vault throttling guidance says ("wait 1
second, retry; if still throttled wait 2 seconds, ... 4, 8, 16 seconds", exponential back-off), with up
to a second of jitter so throttled workers do not retry in step; other faults back off faster
(0.5, 1, 2, ... s). The sleep is injectable, so tests never wait.
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


def _status(exc: BaseException | None) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


class RetryPolicy:
    def __init__(
        self,
        *,
        attempts: int = 6,
        budget_seconds: float = 60.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._attempts = attempts
        self._budget = budget_seconds
        self._sleep = sleep
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=10.0)
        self._throttle_backoff = wait_exponential_jitter(multiplier=1.0, exp_base=2, max=16.0 + 1.0, jitter=1.0)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after_seconds(exc)
        if hinted is not None:
            return hinted
        return self._throttle_backoff(state) if _status(exc) == 429 else self._backoff(state)

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
