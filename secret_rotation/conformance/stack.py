"""The local stack as the conformance kit uses it: the env file `scripts/stack.py up` writes, and the
real adapters (Key Vault through the managed-identity endpoint, the blob lease lock on Azurite) built
from it exactly as `composition.build_service` builds them."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from secret_rotation import stack_env
from secret_rotation.blob_lock import BlobLeaseLock
from secret_rotation.host_storage import container_client
from secret_rotation.keyvault_store import KeyVaultStores
from secret_rotation.retries import RetryPolicy
from secret_rotation.rotator import ProviderContext
from secret_rotation.settings import Settings
from secret_rotation.transport import SharedHttp

if TYPE_CHECKING:
    from azure.identity.aio import ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient

# The App Service managed-identity protocol is the one the stack serves; these would take precedence.
_OTHER_IDENTITY_PROTOCOLS = ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT")


def load_stack_env(path: Path | None = None) -> dict[str, str]:
    """`$ROTATION_STACK_ENV`, else `.local/stack.env` in the working directory or a parent of it (a
    plugin's repository runs the kit from its own directory)."""
    return stack_env.load_stack_env(path or stack_env.default_path(search_from=Path.cwd()))


@contextlib.contextmanager
def _identity_environment(env: Mapping[str, str]) -> Iterator[None]:
    """azure-identity reads its endpoint from the process environment when a credential is built."""
    saved = {key: os.environ.get(key) for key in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", *_OTHER_IDENTITY_PROTOCOLS)}
    for key in _OTHER_IDENTITY_PROTOCOLS:
        os.environ.pop(key, None)
    os.environ["IDENTITY_ENDPOINT"], os.environ["IDENTITY_HEADER"] = env["IDENTITY_ENDPOINT"], env["IDENTITY_HEADER"]
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class StackClients:
    settings: Settings
    credential: ManagedIdentityCredential
    stores: KeyVaultStores
    lock: BlobLeaseLock
    vault: SecretClient  # the kit's own view of the vault, to observe versions and tags
    vault_url: str
    http: SharedHttp  # the one connection pool, as composition shares it with the service's clients

    def provider_context(self) -> ProviderContext:
        """What the service gives rotators: the identity, the stack's CA, the shared connection pool, and
        every other context field that a setting of the same name sets (the planes' endpoints), as
        composition does."""
        given = ("credential", "ca_bundle", "http")
        configured = {
            f.name: getattr(self.settings, f.name)
            for f in fields(ProviderContext)
            if f.name not in given and getattr(self.settings, f.name, None) is not None
        }
        return ProviderContext(
            credential=self.credential, ca_bundle=self.settings.keyvault_ca_bundle, http=self.http, **configured
        )


@contextlib.asynccontextmanager
async def open_stack(env: Mapping[str, str]) -> AsyncIterator[StackClients]:
    from azure.identity.aio import ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient

    settings = Settings.from_env(env)
    http = SharedHttp(settings.keyvault_ca_bundle)
    with _identity_environment(env):
        credential = ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    retry = RetryPolicy(budget_seconds=settings.retry_budget_seconds)
    stores = KeyVaultStores(settings, credential, retry)
    lock = BlobLeaseLock(container_client(settings.storage, credential, settings.lock_container), retry)
    vault = SecretClient(
        env["KEYVAULT_URL"],
        credential,
        api_version=settings.keyvault_api_version,
        verify_challenge_resource=settings.verify_challenge_resource,
        connection_verify=settings.keyvault_ca_bundle or True,
    )
    clients = StackClients(settings, credential, stores, lock, vault, env["KEYVAULT_URL"], http)
    try:
        yield clients
    finally:
        await vault.close()
        await lock.close()
        await stores.close()
        await credential.close()
        await http.close()
