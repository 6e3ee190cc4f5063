"""Composition root: builds the real service (identity, Key Vault, queue, lock, outcome topic, engine)
from `Settings`. Called once per Functions worker process; everything here is shared by invocations.
The operator CLI builds the same parts with the operator's credential (`build_parts`).
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
from .on_demand import OnDemand
from .outcomes import OutcomeReporter
from .ports import OutcomeSink, SecretStores
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
    on_demand: OnDemand
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


@dataclass
class Parts:
    """Everything the triggers are built from; the CLI uses the same parts (one way to build each)."""

    settings: Settings
    stores: SecretStores
    scopes: Scopes
    registry: RotatorRegistry
    lock: BlobLeaseLock
    queue: StorageJobQueue
    reporter: OutcomeReporter
    engine: RotationEngine
    closers: list[Callable[[], Awaitable[None]]]


def build_parts(
    settings: Settings,
    registry: RotatorRegistry | None = None,
    *,
    credential: AsyncTokenCredential | None = None,
    observe: Callable[[SecretStores], SecretStores] | None = None,
) -> Parts:
    """`credential` defaults to the managed identity; `observe` may wrap the stores (the CLI's progress)."""
    if credential is None:
        from azure.identity.aio import ManagedIdentityCredential

        # Managed identity only: no connection secrets, no developer credentials in the chain.
        credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    retry = RetryPolicy(budget_seconds=settings.retry_budget_seconds)
    scopes = Scopes(settings.allowed_vaults, settings.allowed_scopes)
    kv_stores = KeyVaultStores(settings, credential, retry)
    stores: SecretStores = observe(kv_stores) if observe else kv_stores
    queue = StorageJobQueue(queue_client(settings.storage, credential, settings.queue_name), retry)
    lock = BlobLeaseLock(container_client(settings.storage, credential, settings.lock_container), retry)
    closers: list[Callable[[], Awaitable[None]]] = [kv_stores.close, queue.close, lock.close]
    reporter = OutcomeReporter(_outcome_sink(settings, credential, retry, closers))
    closers.append(credential.close)
    # Rotators get the same identity for management APIs; their endpoints default to Azure's public cloud.
    context = ProviderContext(credential=credential, ca_bundle=settings.keyvault_ca_bundle)
    # Built-ins, the plugins ROTATION_ALLOWED_PLUGINS names, and the deployment's registration hook.
    registry = registry or RotatorRegistry.from_settings(settings, context)
    engine = RotationEngine(stores, registry, scopes, lock)
    return Parts(settings, stores, scopes, registry, lock, queue, reporter, engine, closers)


def build_service(settings: Settings, registry: RotatorRegistry | None = None) -> Service:
    parts = build_parts(settings, registry)
    return Service(
        intake=Intake(parts.stores, parts.scopes, parts.queue, parts.reporter),
        worker=RotationWorker(parts.engine, parts.reporter),
        sweep=Sweep(
            parts.stores,
            settings.allowed_vaults,
            parts.queue,
            stuck_after=timedelta(minutes=settings.stuck_after_minutes),
        ),
        on_demand=OnDemand(parts.stores, parts.scopes, parts.queue, parts.reporter),
        closers=parts.closers,
    )
