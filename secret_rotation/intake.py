"""Intake: the Event Grid push path. Validate, drop stale events, hand the job to the queue.

Event Grid waits about 30 seconds for an answer and redelivers on timeout, so nothing slow happens
here: one read of the secret (is the event's version still the current one?) and one enqueue. The
queued message is the event itself, in the schema it arrived in, exactly what Event Grid would write
when it delivers straight to the queue in private deployments.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .errors import RotationError
from .events import IgnoredEvent, parse_event
from .outcomes import Outcome, OutcomeReporter, Status, ignored
from .ports import JobQueue, SecretStores
from .scopes import Scopes


class Intake:
    def __init__(self, stores: SecretStores, scopes: Scopes, queue: JobQueue, reporter: OutcomeReporter) -> None:
        self._stores = stores
        self._scopes = scopes
        self._queue = queue
        self._reporter = reporter

    async def accept(self, payload: Mapping[str, Any]) -> Outcome:
        """Returns the logged outcome; raises a retryable RotationError so Event Grid redelivers."""
        try:
            return await self._accept(payload)
        except RotationError as exc:
            outcome = await self._reporter.report(
                Outcome(
                    Status.FAILED,
                    str(payload.get("id") or "unknown"),
                    step="intake",
                    reason=str(exc),
                    retryable=exc.retryable,
                )
            )
            if exc.retryable:
                raise
            return outcome

    async def _accept(self, payload: Mapping[str, Any]) -> Outcome:
        event = parse_event(payload)
        if isinstance(event, IgnoredEvent):
            return await self._reporter.report(ignored(event))
        self._scopes.check_vault(event.vault_url)
        current = await self._stores.for_vault(event.vault_url).get(event.secret_name)
        stale = current is None or (event.version is not None and current.version != event.version)
        if not stale:
            await self._queue.enqueue(json.dumps(payload))
        return await self._reporter.report(
            Outcome(
                Status.SKIPPED if stale else Status.ENQUEUED,
                event.event_id,
                vault_url=event.vault_url,
                secret_name=event.secret_name,
                from_version=event.version,
                reason=f"stale event: current version is {current.version if current else 'none'}" if stale else None,
            )
        )
