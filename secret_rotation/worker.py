"""Worker: the queue path. One message (one Key Vault event) in, one logged outcome out.

A retryable failure is raised as `RetryableFailure` after its outcome is logged, so the Functions host
redelivers the message (and after maxDequeueCount moves it to the poison queue); a permanent failure
completes the message, since no redelivery can fix it.
"""

from __future__ import annotations

from .engine import RotationEngine
from .errors import InvalidEventError, TransientError
from .events import IgnoredEvent, decode_payload, parse_event
from .outcomes import Outcome, Status, ignored, log_outcome


class RetryableFailure(TransientError):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__(f"{outcome.status.value} at {outcome.step}: {outcome.reason}")
        self.outcome = outcome


class RotationWorker:
    def __init__(self, engine: RotationEngine) -> None:
        self._engine = engine

    async def handle(self, body: bytes | str, *, message_id: str = "unknown") -> Outcome:
        correlation_id = message_id
        try:
            payload = decode_payload(body)
            correlation_id = str(payload.get("id") or message_id)
            event = parse_event(payload)
        except InvalidEventError as exc:
            return log_outcome(Outcome(Status.FAILED, correlation_id, step="parse", reason=str(exc)))
        if isinstance(event, IgnoredEvent):
            return log_outcome(ignored(event))
        outcome = log_outcome(await self._engine.rotate(event))
        if outcome.retryable:
            raise RetryableFailure(outcome)
        return outcome
