"""Last hop: every job ends in exactly one `Outcome`, written as one structured log line.

The line's message starts with the outcome's name (`SecretRotated`, `SecretRotationFailed`, ...) so
alerts can match it, and the same fields travel as `extra` for Application Insights' custom dimensions.
Reasons are built from error messages that never carry values (see `secret_value.Redactor`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from enum import Enum

from .events import IgnoredEvent

logger = logging.getLogger("secret_rotation")


class Status(Enum):
    ROTATED = "SecretRotated"
    FAILED = "SecretRotationFailed"
    SKIPPED = "SecretRotationSkipped"
    IGNORED = "EventIgnored"
    ENQUEUED = "RotationEnqueued"


_LEVELS = {
    Status.ROTATED: logging.INFO,
    Status.FAILED: logging.ERROR,
    Status.SKIPPED: logging.INFO,
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

    def fields(self) -> dict[str, str | bool | None]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def ignored(event: IgnoredEvent) -> Outcome:
    return Outcome(Status.IGNORED, event.event_id, reason=f"event type {event.event_type} is not acted on")


def log_outcome(outcome: Outcome) -> Outcome:
    parts = [outcome.status.value]
    for key, value in outcome.fields().items():
        if key != "status" and value not in (None, False):
            parts.append(f"{key}={value}")
    logger.log(_LEVELS[outcome.status], " ".join(parts), extra={"outcome": outcome.fields()})
    return outcome
