"""Composition root: builds the real service (identity, Key Vault, queue, engine) from `Settings`.

Called once per Functions worker process; everything here is async-safe to share between invocations.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .engine import RotationEngine
from .intake import Intake
from .keyvault_store import KeyVaultStores
from .registry import RotatorRegistry
from .retries import RetryPolicy
from .rotation_queue import StorageJobQueue
from .scopes import Scopes
from .settings import Settings
from .worker import RotationWorker


@dataclass
class Service:
    intake: Intake
    worker: RotationWorker
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def close(self) -> None:
        for close in self.closers:
            await close()


def build_service(settings: Settings, registry: RotatorRegistry | None = None) -> Service:
    from azure.identity.aio import ManagedIdentityCredential

    # Managed identity only: no connection secrets, no developer credentials in the chain.
    credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    retry = RetryPolicy()
    scopes = Scopes(settings.allowed_vaults, settings.allowed_scopes)
    stores = KeyVaultStores(settings, credential, retry)
    queue = StorageJobQueue.from_settings(settings, credential, retry)
    engine = RotationEngine(stores, registry or RotatorRegistry(), scopes)
    return Service(
        intake=Intake(stores, scopes, queue),
        worker=RotationWorker(engine),
        closers=[stores.close, queue.close, credential.close],
    )
