"""Worker: the queue path. One message (one Key Vault event) in, one logged outcome out.

A retryable failure is raised as `RetryableFailure` after its outcome is logged, so the Functions host
redelivers the message (and after maxDequeueCount moves it to the poison queue); a permanent failure
completes the message, since no redelivery can fix it.
"""

from __future__ import annotations

from dataclasses import replace

from .engine import RotationEngine
from .errors import InvalidEventError, TransientError
from .events import IgnoredEvent, decode_payload, parse_event
from .outcomes import Outcome, OutcomeReporter, Status, ignored


class RetryableFailure(TransientError):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(f"{outcome.status.value} at {outcome.step}: {outcome.reason}")
        self.outcome = outcome


class RotationWorker:
    def __init__(self, engine: RotationEngine, reporter: OutcomeReporter) -> None:
        self._engine = engine
        self._reporter = reporter

    async def handle(self, body: bytes | str, *, message_id: str = "unknown", attempt: int | None = None) -> Outcome:
        correlation_id = message_id
        try:
            payload = decode_payload(body)
            correlation_id = str(payload.get("id") or message_id)
            event = parse_event(payload)
        except InvalidEventError as exc:
            return await self._reporter.report(
                Outcome(Status.FAILED, correlation_id, step="parse", reason=str(exc), attempt=attempt)
            )
        if isinstance(event, IgnoredEvent):
            return await self._reporter.report(ignored(event))
        outcome = await self._reporter.report(replace(await self._engine.rotate(event), attempt=attempt))
        if outcome.retryable:
            raise RetryableFailure(outcome)
        return outcome
