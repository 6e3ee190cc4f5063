"""Last hop: every job ends in exactly one `Outcome`: one structured log line and, for rotations and
failures, one event on the outcome topic.

The line's message starts with the outcome's name (`SecretRotated`, `SecretRotationFailed`, ...) so
alerts can match it, and the same fields travel as `extra` for Application Insights' custom dimensions.
Reasons are built from error messages that never carry values (see `secret_value.Redactor`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from enum import Enum
from typing import TYPE_CHECKING

from .events import IgnoredEvent

if TYPE_CHECKING:
    from .ports import OutcomeSink

logger = logging.getLogger("secret_rotation")


class Status(Enum):
    ROTATED = "SecretRotated"
    FAILED = "SecretRotationFailed"
    SKIPPED = "SecretRotationSkipped"
    DEFERRED = "SecretRotationDeferred"
    IGNORED = "EventIgnored"
    ENQUEUED = "RotationEnqueued"


_LEVELS = {
    Status.ROTATED: logging.INFO,
    Status.FAILED: logging.ERROR,
    Status.SKIPPED: logging.INFO,
    Status.DEFERRED: logging.INFO,
    Status.IGNORED: logging.INFO,
    Status.ENQUEUED: logging.INFO,
}


@dataclass(frozen=True)
class Outcome:
    status: Status
    correlation_id: str
    vault_url: str | None = None
    secret_name: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    step: str | None = None
    reason: str | None = None
    retryable: bool = False
    attempt: int | None = None  # the queue's dequeue count; the host poisons the message after 5

    def fields(self) -> dict[str, str | bool | int | None]:
        data: dict[str, str | bool | int | None] = asdict(self)
        data["status"] = self.status.value
        return data


def ignored(event: IgnoredEvent) -> Outcome:
    reason = event.reason or f"event type {event.event_type} is not acted on"
    return Outcome(Status.IGNORED, event.event_id, reason=reason)


def log_outcome(outcome: Outcome) -> Outcome:
    parts = [outcome.status.value]
    for key, value in outcome.fields().items():
        if key != "status" and value not in (None, False):
            parts.append(f"{key}={value}")
    logger.log(_LEVELS[outcome.status], " ".join(parts), extra={"outcome": outcome.fields()})
    return outcome


class OutcomeReporter:
    """Every outcome: one log line, then (rotations and failures) one event on the outcome topic."""

    def __init__(self, sink: OutcomeSink) -> None:
        self._sink = sink

    async def report(self, outcome: Outcome) -> Outcome:
        log_outcome(outcome)
        await self._sink.publish(outcome)
        return outcome
