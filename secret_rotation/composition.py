"""Composition root: wires the real service (identity, Key Vault, queue, lock, outcome topic, engine) from
`Settings`. Called once per Functions worker process; everything here is shared by invocations.

Everything is built on first use (cold start): importing this module imports no SDK, an intake
invocation builds only the identity, the Key Vault client and the queue client, and the engine, the
rotators, the blob lock and the Event Grid publisher come with the first worker invocation that needs
them. All clients share one connection pool (`transport.SharedHttp`) and, for Key Vault, one per-vault
write limiter (`throttle.VaultThrottle`). The operator CLI uses the same wiring with the operator's
credential (`Wiring(..., credential=...)`), so it runs the same engine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import TYPE_CHECKING

from .settings import Settings
from .transport import SharedHttp

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.eventgrid.aio import EventGridPublisherClient

    from .blob_lock import BlobLeaseLock
    from .engine import RotationEngine
    from .intake import Intake
    from .keyvault_store import KeyVaultStores
    from .on_demand import OnDemand
    from .outcomes import OutcomeReporter
    from .ports import OutcomeSink, SecretStores
    from .registry import RotatorRegistry
    from .retries import RetryPolicy
    from .rotation_queue import StorageJobQueue
    from .scopes import Scopes
    from .sweep import Sweep
    from .throttle import VaultThrottle
    from .worker import RotationWorker


class Wiring:
    """The service's parts, each built (and its SDK imported) the first time something needs it."""

    def __init__(
        self,
        settings: Settings,
        registry: RotatorRegistry | None = None,
        http: SharedHttp | None = None,
        *,
        credential: AsyncTokenCredential | None = None,
    ):
        """`credential` replaces the managed identity (the operator CLI's own sign-in); it is closed too."""
        self.settings = settings
        self._registry = registry
        self._credential = credential
        self.http = http or SharedHttp(settings.keyvault_ca_bundle)
        self._closers: list[Callable[[], Awaitable[None]]] = []

    @cached_property
    def credential(self) -> AsyncTokenCredential:
        from azure.identity.aio import ManagedIdentityCredential

        if self._credential is not None:
            self._closers.append(self._credential.close)
            return self._credential
        # Managed identity only: no connection secrets, no developer credentials in the chain.
        credential = ManagedIdentityCredential(
            client_id=self.settings.managed_identity_client_id, transport=self.http.transport()
        )
        self._closers.append(credential.close)
        return credential

    @cached_property
    def retry(self) -> RetryPolicy:
        from .retries import RetryPolicy

        return RetryPolicy(budget_seconds=self.settings.retry_budget_seconds)

    @cached_property
    def throttle(self) -> VaultThrottle:
        from .throttle import VaultThrottle

        return VaultThrottle.from_settings(self.settings)

    @cached_property
    def stores(self) -> KeyVaultStores:
        from .keyvault_store import KeyVaultStores

        stores = KeyVaultStores(
            self.settings,
            self.credential,
            self.retry,
            client_options=lambda vault_url: {
                "transport": self.http.transport(),
                "per_retry_policies": [self.throttle.policy()],
            },
        )
        self._closers.append(stores.close)
        return stores

    @cached_property
    def queue(self) -> StorageJobQueue:
        from .host_storage import queue_client
        from .rotation_queue import StorageJobQueue

        client = queue_client(
            self.settings.storage, self.credential, self.settings.queue_name, transport=self.http.transport()
        )
        queue = StorageJobQueue(client, self.retry)
        self._closers.append(queue.close)
        return queue

    @cached_property
    def lock(self) -> BlobLeaseLock:
        from .blob_lock import BlobLeaseLock
        from .host_storage import container_client

        client = container_client(
            self.settings.storage, self.credential, self.settings.lock_container, transport=self.http.transport()
        )
        lock = BlobLeaseLock(client, self.retry)
        self._closers.append(lock.close)
        return lock

    @cached_property
    def reporter(self) -> OutcomeReporter:
        from .outcomes import OutcomeReporter

        return OutcomeReporter(self._outcome_sink())

    def _outcome_sink(self) -> OutcomeSink:
        from .eventgrid_outcomes import EventGridOutcomes, NoOutcomeEvents

        endpoint = self.settings.outcome_topic_endpoint
        if not endpoint:
            return NoOutcomeEvents()

        def client() -> EventGridPublisherClient:
            from azure.eventgrid.aio import EventGridPublisherClient

            return EventGridPublisherClient(endpoint, self.credential, retry_total=0, transport=self.http.transport())

        sink = EventGridOutcomes(client, self.retry)
        self._closers.append(sink.close)
        return sink

    @cached_property
    def registry(self) -> RotatorRegistry:
        from .registry import RotatorRegistry
        from .rotator import ProviderContext

        if self._registry is not None:
            return self._registry
        # Rotators get the same identity and connection pool for management APIs; their endpoints default
        # to Azure's public cloud.
        settings = self.settings
        context = ProviderContext(
            credential=self.credential,
            arm_endpoint=settings.arm_endpoint or ProviderContext.arm_endpoint,
            graph_endpoint=settings.graph_endpoint or ProviderContext.graph_endpoint,
            authority_host=settings.authority_host or ProviderContext.authority_host,
            ca_bundle=settings.keyvault_ca_bundle,
            database_port=settings.database_port,
            sql_login_check=settings.sql_login_check,
            http=self.http,  # the one connection pool: a rotation's ARM / Graph / login calls reuse it too
        )
        # Built-ins, the plugins ROTATION_ALLOWED_PLUGINS names, and the deployment's registration hook.
        return RotatorRegistry.from_settings(self.settings, context)

    @cached_property
    def scopes(self) -> Scopes:
        from .scopes import Scopes

        return Scopes(self.settings.allowed_vaults, self.settings.allowed_scopes)

    def intake(self) -> Intake:
        from .intake import Intake

        return Intake(self.stores, self.scopes, self.queue, self.reporter)

    def engine(self, stores: SecretStores | None = None) -> RotationEngine:
        """`stores` may wrap `self.stores` (the CLI's progress display)."""
        from .engine import RotationEngine

        return RotationEngine(stores or self.stores, self.registry, self.scopes, self.lock)

    def worker(self) -> RotationWorker:
        from .worker import RotationWorker

        return RotationWorker(self.engine(), self.reporter)

    def on_demand(self) -> OnDemand:
        from .on_demand import OnDemand

        return OnDemand(self.stores, self.scopes, self.queue, self.reporter)

    def sweep(self) -> Sweep:
        from datetime import timedelta

        from .sweep import Sweep

        stuck_after = timedelta(minutes=self.settings.stuck_after_minutes)
        return Sweep(self.stores, self.settings.allowed_vaults, self.queue, stuck_after=stuck_after)

    async def close(self) -> None:
        # Clients before the credential they use; the shared connection pool last.
        for close in reversed(self._closers):
            await close()
        self._closers.clear()
        await self.http.close()


class Service:
    """What the triggers call: `intake`, `worker`, `sweep`, `on_demand`. Given parts are used as they are
    (tests pass in-memory ones); otherwise each is built from the wiring on first access."""

    def __init__(
        self,
        intake: Intake | None = None,
        worker: RotationWorker | None = None,
        sweep: Sweep | None = None,
        *,
        on_demand: OnDemand | None = None,
        wiring: Wiring | None = None,
    ) -> None:
        self._intake, self._worker, self._sweep, self._on_demand = intake, worker, sweep, on_demand
        self.wiring = wiring

    def _wired(self) -> Wiring:
        if self.wiring is None:
            raise RuntimeError("this Service was built from parts and has no wiring for the missing one")
        return self.wiring

    @property
    def intake(self) -> Intake:
        if self._intake is None:
            self._intake = self._wired().intake()
        return self._intake

    @property
    def worker(self) -> RotationWorker:
        if self._worker is None:
            self._worker = self._wired().worker()
        return self._worker

    @property
    def sweep(self) -> Sweep:
        if self._sweep is None:
            self._sweep = self._wired().sweep()
        return self._sweep

    @property
    def on_demand(self) -> OnDemand:
        if self._on_demand is None:
            self._on_demand = self._wired().on_demand()
        return self._on_demand

    async def close(self) -> None:
        if self.wiring is not None:
            await self.wiring.close()


def build_service(
    settings: Settings, registry: RotatorRegistry | None = None, *, http: SharedHttp | None = None
) -> Service:
    """Cheap: nothing is imported, built or connected until an entry point is first used."""
    return Service(wiring=Wiring(settings, registry, http))
