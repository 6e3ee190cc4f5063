"""The Storage queue between intake and worker (the `JobQueue` port).

Messages are base64 text, the Functions host's default and what Event Grid writes when it delivers
straight to a queue, so both paths feed the same worker. Connection: a connection string locally
(Azurite), the service URI with the managed identity in Azure (no keys).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .errors import ConfigurationError, TransientError
from .retries import RetryPolicy
from .settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.storage.queue.aio import QueueClient


class StorageJobQueue:
    def __init__(self, client: QueueClient, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry
        self._ensured = False

    @classmethod
    def from_settings(cls, settings: Settings, credential: AsyncTokenCredential, retry: RetryPolicy) -> StorageJobQueue:
        from azure.storage.queue import TextBase64EncodePolicy
        from azure.storage.queue.aio import QueueClient

        storage = settings.storage
        encode = TextBase64EncodePolicy()
        if storage.connection_string:
            client = QueueClient.from_connection_string(
                storage.connection_string, settings.queue_name, message_encode_policy=encode, retry_total=0
            )
        elif storage.queue_service_uri:
            client = QueueClient(
                storage.queue_service_uri,
                settings.queue_name,
                credential=credential,
                message_encode_policy=encode,
                retry_total=0,
            )
        else:
            raise ConfigurationError(
                "no host storage configured: set AzureWebJobsStorage or AzureWebJobsStorage__queueServiceUri"
            )
        return cls(client, retry)

    async def enqueue(self, body: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            if not self._ensured:
                with contextlib.suppress(ResourceExistsError):
                    await self._retry.call(self._client.create_queue)
                self._ensured = True
            await self._retry.call(lambda: self._client.send_message(body))
        except Exception as exc:
            # Whatever the cause, the job is not queued: the trigger must fail so the event is redelivered.
            raise TransientError(f"could not enqueue on {self._client.queue_name}: {exc.__class__.__name__}") from None

    async def close(self) -> None:
        await self._client.close()
