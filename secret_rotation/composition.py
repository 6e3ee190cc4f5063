"""Composition root: builds the real service (identity, Key Vault, queue, lock, outcome topic, engine)
from `Settings`. Called once per Functions worker process; everything here is shared by invocations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from .blob_lock import BlobLeaseLock
from .engine import RotationEngine
from .eventgrid_outcomes import EventGridOutcomes, NoOutcomeEvents
from .host_storage import container_client, queue_client
from .intake import Intake
from .keyvault_store import KeyVaultStores
from .outcomes import OutcomeReporter
from .ports import OutcomeSink
from .registry import RotatorRegistry
from .retries import RetryPolicy
from .rotation_queue import StorageJobQueue
from .rotator import ProviderContext
from .scopes import Scopes
from .settings import Settings
from .sweep import Sweep
from .worker import RotationWorker

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


@dataclass
class Service:
    intake: Intake
    worker: RotationWorker
    sweep: Sweep
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in self.closers:
            await close()


def _outcome_sink(
    settings: Settings,
    credential: AsyncTokenCredential,
    retry: RetryPolicy,
    closers: list[Callable[[], Awaitable[None]]],
) -> OutcomeSink:
    if not settings.outcome_topic_endpoint:
        return NoOutcomeEvents()
    from azure.eventgrid.aio import EventGridPublisherClient

    client = EventGridPublisherClient(
        settings.outcome_topic_endpoint,
        credential,
        retry_total=0,
        # Locally the stack's one CA signs the topic too; in Azure this is the system trust store.
        connection_verify=settings.keyvault_ca_bundle or True,
    )
    sink = EventGridOutcomes(client, retry)
    closers.append(sink.close)
    return sink


def build_service(settings: Settings, registry: RotatorRegistry | None = None) -> Service:
    from azure.identity.aio import ManagedIdentityCredential

    # Managed identity only: no connection secrets, no developer credentials in the chain.
    credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    retry = RetryPolicy(budget_seconds=settings.retry_budget_seconds)
    scopes = Scopes(settings.allowed_vaults, settings.allowed_scopes)
    stores = KeyVaultStores(settings, credential, retry)
    queue = StorageJobQueue(queue_client(settings.storage, credential, settings.queue_name), retry)
    lock = BlobLeaseLock(container_client(settings.storage, credential, settings.lock_container), retry)
    closers: list[Callable[[], Awaitable[None]]] = [stores.close, queue.close, lock.close]
    reporter = OutcomeReporter(_outcome_sink(settings, credential, retry, closers))
    closers.append(credential.close)
    # Rotators get the same identity for management APIs; their endpoints default to Azure's public cloud.
    context = ProviderContext(credential=credential, ca_bundle=settings.keyvault_ca_bundle)
    # Built-ins, the plugins ROTATION_ALLOWED_PLUGINS names, and the deployment's registration hook.
    registry = registry or RotatorRegistry.from_settings(settings, context)
    engine = RotationEngine(stores, registry, scopes, lock)
    return Service(
        intake=Intake(stores, scopes, queue, reporter),
        worker=RotationWorker(engine, reporter),
        sweep=Sweep(
            stores, settings.allowed_vaults, queue, stuck_after=timedelta(minutes=settings.stuck_after_minutes)
        ),
        closers=closers,
    )
