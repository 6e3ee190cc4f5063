"""Outcome events on an Event Grid topic (the `OutcomeSink` port), with the managed identity.

Each rotation's `SecretRotated` or `SecretRotationFailed` becomes one Event Grid event whose data is the
outcome's fields (names, versions, step, reason: never a value). Publishing is best effort: a topic
outage is logged, never turned into a failed rotation, since the rotation itself already happened.
The publisher client is built on the first event that is published (cold start: intake reports only
enqueued/skipped outcomes on its happy path, so it never builds or imports the Event Grid SDK).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .outcomes import Outcome, Status

if TYPE_CHECKING:
    from azure.eventgrid.aio import EventGridPublisherClient

    from .retries import RetryPolicy

logger = logging.getLogger("secret_rotation")

PUBLISHED = frozenset({Status.ROTATED, Status.FAILED})
EVENT_TYPE_PREFIX = "SecretRotation."


def subject_of(outcome: Outcome) -> str:
    vault = urlsplit(outcome.vault_url or "").netloc or "unknown-vault"
    return f"/vaults/{vault}/secrets/{outcome.secret_name or 'unknown'}"


class EventGridOutcomes:
    def __init__(self, client: Callable[[], EventGridPublisherClient], retry: RetryPolicy) -> None:
        self._new_client = client
        self._client: EventGridPublisherClient | None = None
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
        if self._client is None:
            self._client = self._new_client()
        client = self._client
        try:
            await self._retry.call(lambda: client.send(event))
        except Exception as exc:
            logger.warning("outcome event for %s not published: %s", outcome.correlation_id, exc.__class__.__name__)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


class NoOutcomeEvents:
    """When no topic is configured: the log line is the only outcome."""

    async def publish(self, outcome: Outcome) -> None:
        return None
