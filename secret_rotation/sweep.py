"""Reconciliation sweep (timer trigger): events are hints, the sweep is the guarantee.

Event Grid drops events after 24 hours of failed delivery, and a worker can die with a rotation
pending. The sweep lists every allowed vault's secrets, page by page and by properties only (no value
is read), and enqueues a job for each secret whose tags name or imply a rotator (`RotatorType`, or a
`ProviderAddress` of a resource type with a built-in rotator) and is expired or inside
the near-expiry window, and for each secret whose pending record has not moved for longer than
`ROTATION_STUCK_AFTER_MINUTES`. The jobs are ordinary Key Vault events in the Event Grid schema, so
they take the same idempotent path as delivered ones: a secret already rotated is simply skipped.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .events import SecretEventType, secret_event_payload
from .pending import PENDING_SUFFIX, Step
from .ports import JobQueue, SecretStores, SecretSummary
from .tags import NEAR_EXPIRY_DAYS, Tag, rotator_for

logger = logging.getLogger("secret_rotation")


@dataclass(frozen=True)
class DueSecret:
    vault_url: str
    name: str
    reason: str  # "expired", "near-expiry" or "stuck"
    expires_on: datetime | None


@dataclass(frozen=True)
class SweepReport:
    listed: int
    enqueued: tuple[DueSecret, ...]


class Sweep:
    def __init__(
        self,
        stores: SecretStores,
        vaults: tuple[str, ...],
        queue: JobQueue,
        *,
        stuck_after: timedelta,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._stores = stores
        self._vaults = vaults
        self._queue = queue
        self._stuck_after = stuck_after
        self._clock = clock

    async def run(self) -> SweepReport:
        listed, enqueued = 0, []
        for vault in self._vaults:
            store = self._stores.for_vault(vault)
            due: dict[str, DueSecret] = {}
            async for summary in store.list_secrets():
                listed += 1
                found = self._classify(vault, summary)
                if found is not None and (found.name not in due or found.reason != "stuck"):
                    due[found.name] = found
            for secret in due.values():
                version = await store.newest_version(secret.name)
                if version is None:
                    continue
                event_type = SecretEventType.EXPIRED if secret.reason == "expired" else SecretEventType.NEAR_EXPIRY
                expires = int(secret.expires_on.timestamp()) if secret.expires_on else None
                payload = secret_event_payload(
                    vault, secret.name, version, event_type, event_id=f"sweep-{uuid.uuid4()}", expires_on=expires
                )
                await self._queue.enqueue(json.dumps(payload))
                enqueued.append(secret)
        report = SweepReport(listed=listed, enqueued=tuple(enqueued))
        logger.info(
            "SweepCompleted vaults=%d listed=%d enqueued=%d%s",
            len(self._vaults),
            listed,
            len(enqueued),
            "".join(f" {s.name}({s.reason})" for s in enqueued),
        )
        return report

    def _classify(self, vault: str, summary: SecretSummary) -> DueSecret | None:
        now = self._clock()
        if summary.name.endswith(PENDING_SUFFIX):
            owner = summary.tags.get(Tag.PENDING_FOR)
            step = summary.tags.get(Tag.PENDING_STEP)
            updated = summary.updated_on
            if owner and step != Step.COMPLETED.value and updated and updated < now - self._stuck_after:
                return DueSecret(vault, owner, "stuck", None)
            return None
        # A rotator named by RotatorType or implied by ProviderAddress (Microsoft's tutorial tags).
        if not (summary.enabled and rotator_for(summary.tags) and summary.expires_on):
            return None
        if summary.expires_on <= now:
            return DueSecret(vault, summary.name, "expired", summary.expires_on)
        if summary.expires_on <= now + timedelta(days=NEAR_EXPIRY_DAYS):
            return DueSecret(vault, summary.name, "near-expiry", summary.expires_on)
        return None
