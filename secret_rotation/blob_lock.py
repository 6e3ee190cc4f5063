"""Per-secret lock across instances: a blob lease in the host storage account (the `RotationLock` port).

The lease lasts 60 seconds and is renewed every 20 while the rotation runs, so a crashed instance
blocks its secret for at most a minute. A worker that finds the lease taken raises `LockedError`
(retryable): its message returns to the queue and comes back after the holder has finished, when the
protocol sees the work is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from .errors import LockedError, TransientError
from .retries import RetryPolicy
from .sweep import vault_key

if TYPE_CHECKING:
    from azure.storage.blob.aio import BlobClient, BlobLeaseClient, ContainerClient

logger = logging.getLogger("secret_rotation")

LEASE_SECONDS = 60
RENEW_EVERY_SECONDS = 20


def lock_blob_name(vault_url: str, secret_name: str) -> str:
    """`<vault>/<secret>`: the vault as `sweep.vault_key` names it (its name in Azure, host:port locally)
    and the secret name lowercased (Key Vault's are case-insensitive), so each secret has exactly one lock
    whichever URL or spelling the job came with. Neither part can contain a slash, so names never collide.
    The name goes to the SDK unquoted: the storage client percent-encodes blob names itself, and a quoted
    name would be stored with its escapes (`127.0.0.1%3A8443/...`)."""
    return f"{vault_key(vault_url)}/{secret_name.lower()}"


class BlobLeaseLock:
    def __init__(self, container: ContainerClient, retry: RetryPolicy) -> None:
        self._container = container
        self._retry = retry

    @contextlib.asynccontextmanager
    async def hold(self, vault_url: str, secret_name: str) -> AsyncIterator[None]:
        from azure.core.exceptions import HttpResponseError

        blob = self._container.get_blob_client(lock_blob_name(vault_url, secret_name))
        try:
            lease = await self._acquire(blob)
        except HttpResponseError as exc:
            if exc.status_code == 409:
                raise LockedError(f"secret {secret_name} is being rotated by another worker") from None
            raise TransientError(f"could not lock secret {secret_name}: {exc.__class__.__name__}") from None
        except Exception as exc:
            raise TransientError(f"could not lock secret {secret_name}: {exc.__class__.__name__}") from None

        async def renew() -> None:
            while True:
                await asyncio.sleep(RENEW_EVERY_SECONDS)
                try:
                    await lease.renew()
                except Exception as exc:
                    # Steps check before they act, so losing the lease risks duplicate work, not loss.
                    logger.warning("lock on %s lost: %s", secret_name, exc.__class__.__name__)
                    return

        renewer = asyncio.create_task(renew())
        try:
            yield
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            with contextlib.suppress(Exception):  # an unreleased lease expires by itself
                await lease.release()

    async def _acquire(self, blob: BlobClient) -> BlobLeaseClient:
        """Lease the secret's lock blob; the blob (and the container) are created only when missing, so a
        secret rotated before costs one request here, not an upload every time."""
        from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

        try:
            return await self._retry.call(lambda: blob.acquire_lease(lease_duration=LEASE_SECONDS))
        except ResourceNotFoundError as exc:
            if getattr(exc, "error_code", None) == "ContainerNotFound":
                with contextlib.suppress(ResourceExistsError):
                    await self._retry.call(self._container.create_container)
        with contextlib.suppress(ResourceExistsError):  # another worker created it first: fine
            await self._retry.call(lambda: blob.upload_blob(b"", overwrite=False))
        return await self._retry.call(lambda: blob.acquire_lease(lease_duration=LEASE_SECONDS))

    async def close(self) -> None:
        await self._container.close()
