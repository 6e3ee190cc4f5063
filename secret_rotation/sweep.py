"""Reconciliation sweep (timer trigger): events are hints, the sweep is the guarantee.

Event Grid drops events after 24 hours of failed delivery, and a worker can die with a rotation
pending. The sweep lists every allowed vault's secrets once (one `list_properties_of_secrets`, page by
page, properties only: no value and no per-secret version listing), and enqueues a job for each secret
whose tags name or imply a rotator (`RotatorType`, or a `ProviderAddress` of a resource type with a
built-in rotator) and is expired or inside the near-expiry window, and for each secret
whose pending record is open and has not moved for longer than `ROTATION_STUCK_AFTER_MINUTES`. The jobs
are Key Vault events in the Event Grid schema without a version: the worker resolves the current
version under the secret's lock, so the job cannot name a version that is no longer current, and they
take the same idempotent path as delivered ones. Jobs are enqueued while the listing goes on, at most
`ENQUEUE_CONCURRENCY` at a time (a stuck record's job waits for the end of its vault's listing, in case
its secret is due for expiry too: then that job is sent instead). A vault configured under several URLs
(spellings, or its public and private-link names) is swept once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from .events import SecretEventType, secret_event_payload
from .pending import PENDING_SUFFIX, Step
from .ports import JobQueue, SecretStores, SecretSummary
from .tags import NEAR_EXPIRY_DAYS, Tag, rotator_for

logger = logging.getLogger("secret_rotation")


ENQUEUE_CONCURRENCY = 16


# Key Vault's DNS zones: a vault `kv` answers as kv.vault.azure.net and, through a private endpoint, as
# kv.privatelink.vaultcore.azure.net; names are unique per cloud, so one name is one vault.
_KEY_VAULT_ZONES = (".vault.azure.net", ".vaultcore.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net")


def vault_key(url: str) -> str:
    """One name per vault, whatever URL reaches it: the vault's name in Key Vault's DNS zones (case, a
    trailing slash, an explicit :443, public or private-link name make no difference), else host:port
    (the local stack). Also names the vault in the per-secret lock blob (`blob_lock.lock_blob_name`)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port if parts.port not in (None, 443) else None
    return host.split(".")[0] if host.endswith(_KEY_VAULT_ZONES) and not port else f"{host}:{port or 443}"


def unique_vaults(vaults: tuple[str, ...]) -> list[str]:
    """Each vault once (`vault_key`); the first URL configured is the one used."""
    seen: dict[str, str] = {}
    for url in vaults:
        seen.setdefault(vault_key(url), url.strip().rstrip("/"))
    return list(seen.values())


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
        vaults = unique_vaults(self._vaults)
        listed = 0
        # Jobs go out while the listing goes on, at most ENQUEUE_CONCURRENCY at a time: the listing waits for
        # a free slot, so a vault of any size holds at most that many enqueues in flight.
        limit = asyncio.Semaphore(ENQUEUE_CONCURRENCY)
        jobs: list[tuple[DueSecret, asyncio.Task[BaseException | None]]] = []

        def start(secret: DueSecret) -> None:
            jobs.append((secret, asyncio.create_task(self._enqueue(secret, limit))))

        try:
            for vault in vaults:
                store = self._stores.for_vault(vault)
                enqueued: set[str] = set()
                stuck: dict[str, DueSecret] = {}
                async for summary in store.list_secrets():
                    listed += 1
                    secret = self._classify(vault, summary)
                    if secret is None:
                        continue
                    if secret.reason == "stuck":
                        # Held to the vault's end: the secret itself may still come up due for expiry, and
                        # that job (with its expiry) is the one to send.
                        stuck[secret.name] = secret
                        continue
                    await limit.acquire()
                    enqueued.add(secret.name)
                    start(secret)
                for name, secret in stuck.items():
                    if name not in enqueued:
                        await limit.acquire()
                        start(secret)
        finally:
            # Every enqueue runs to its end, so one failure (of an enqueue or of a listing) neither hides nor
            # abandons the others; a listing's error goes on up once they have ended.
            results = await asyncio.gather(*(task for _, task in jobs))
        sent = tuple(secret for (secret, _), result in zip(jobs, results, strict=True) if result is None)
        failures = [result for result in results if result is not None]
        logger.info(
            "SweepCompleted vaults=%d listed=%d enqueued=%d failed=%d%s",
            len(vaults),
            listed,
            len(sent),
            len(failures),
            "".join(f" {s.name}({s.reason})" for s in sent),
        )
        if failures:
            raise failures[0]  # the timer invocation fails visibly; the next sweep tries again
        return SweepReport(listed=listed, enqueued=sent)

    async def _enqueue(self, secret: DueSecret, limit: asyncio.Semaphore) -> BaseException | None:
        """One job, its slot released at the end; its failure is returned to `run`, not raised."""
        try:
            event_type = SecretEventType.EXPIRED if secret.reason == "expired" else SecretEventType.NEAR_EXPIRY
            expires = int(secret.expires_on.timestamp()) if secret.expires_on else None
            payload = secret_event_payload(
                secret.vault_url, secret.name, event_type, event_id=f"sweep-{uuid.uuid4()}", expires_on=expires
            )
            await self._queue.enqueue(json.dumps(payload))
        except Exception as exc:
            return exc
        finally:
            limit.release()
        return None

    def _classify(self, vault: str, summary: SecretSummary) -> DueSecret | None:
        now = self._clock()
        if summary.name.endswith(PENDING_SUFFIX):
            owner = summary.tags.get(Tag.PENDING_FOR)
            step = summary.tags.get(Tag.PENDING_STEP)
            updated = summary.updated_on
            # The listing shows the record's newest version: open unless completed or disabled.
            is_open = summary.enabled and step != Step.COMPLETED.value
            if owner and is_open and updated and updated < now - self._stuck_after:
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
