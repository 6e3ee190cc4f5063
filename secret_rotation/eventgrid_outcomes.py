"""Outcome events on an Event Grid topic (the `OutcomeSink` port), with the managed identity.

Each rotation's `SecretRotated` or `SecretRotationFailed` becomes one Event Grid event whose data is the
outcome's fields (names, versions, step, reason: never a value). Publishing is best effort: a topic
outage is logged, never turned into a failed rotation, since the rotation itself already happened.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .outcomes import Outcome, Status
from .retries import RetryPolicy

if TYPE_CHECKING:
    from azure.eventgrid.aio import EventGridPublisherClient

logger = logging.getLogger("secret_rotation")

PUBLISHED = frozenset({Status.ROTATED, Status.FAILED})
EVENT_TYPE_PREFIX = "SecretRotation."


def subject_of(outcome: Outcome) -> str:
    vault = urlsplit(outcome.vault_url or "").netloc or "unknown-vault"
    return f"/vaults/{vault}/secrets/{outcome.secret_name or 'unknown'}"


class EventGridOutcomes:
    def __init__(self, client: EventGridPublisherClient, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    async def publish(self, outcome: Outcome) -> None:
        from azure.eventgrid import EventGridEvent

        if outcome.status not in PUBLISHED:
            return
        event = EventGridEvent(
            subject=subject_of(outcome),
            event_type=EVENT_TYPE_PREFIX + outcome.status.value,
            data=outcome.fields(),
            data_version="1.0",
        )
        try:
            await self._retry.call(lambda: self._client.send(event))
        except Exception as exc:
            logger.warning("outcome event for %s not published: %s", outcome.correlation_id, exc.__class__.__name__)

    async def close(self) -> None:
        await self._client.close()


class NoOutcomeEvents:
    """When no topic is configured: the log line is the only outcome."""

    async def publish(self, outcome: Outcome) -> None:
        return None
