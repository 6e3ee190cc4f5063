"""Clients for the Function App's host storage account (queues, lock blobs, dead letters).

One decision lives here: a connection string locally (Azurite), the service URIs with the managed
identity in Azure (`AzureWebJobsStorage__queueServiceUri` / `__blobServiceUri`, no keys). SDK retries
are off; `retries.RetryPolicy` is the one retry mechanism. `transport` is the process's shared connection
pool (`transport.SharedHttp`); without it the SDK opens its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .settings import STORAGE_BLOB_SERVICE_URI, STORAGE_CONNECTION, STORAGE_QUEUE_SERVICE_URI, StorageSettings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.storage.blob.aio import ContainerClient
    from azure.storage.queue.aio import QueueClient


def _options(transport: AioHttpTransport | None) -> dict[str, Any]:
    return {"retry_total": 0, **({"transport": transport} if transport is not None else {})}


def queue_client(
    storage: StorageSettings,
    credential: AsyncTokenCredential,
    queue_name: str,
    *,
    transport: AioHttpTransport | None = None,
) -> QueueClient:
    """Base64 messages: the Functions host's default, and what Event Grid writes to queues."""
    from azure.storage.queue import TextBase64DecodePolicy, TextBase64EncodePolicy
    from azure.storage.queue.aio import QueueClient

    encode, decode = TextBase64EncodePolicy(), TextBase64DecodePolicy()
    if storage.connection_string:
        return QueueClient.from_connection_string(
            storage.connection_string,
            queue_name,
            message_encode_policy=encode,
            message_decode_policy=decode,
            **_options(transport),
        )
    if storage.queue_service_uri:
        return QueueClient(
            storage.queue_service_uri,
            queue_name,
            credential=credential,
            message_encode_policy=encode,
            message_decode_policy=decode,
            **_options(transport),
        )
    raise ConfigurationError(f"no host storage: set {STORAGE_CONNECTION} or {STORAGE_QUEUE_SERVICE_URI}")


def container_client(
    storage: StorageSettings,
    credential: AsyncTokenCredential,
    container: str,
    *,
    transport: AioHttpTransport | None = None,
) -> ContainerClient:
    from azure.storage.blob.aio import ContainerClient

    if storage.connection_string:
        return ContainerClient.from_connection_string(storage.connection_string, container, **_options(transport))
    if storage.blob_service_uri:
        return ContainerClient(storage.blob_service_uri, container, credential=credential, **_options(transport))
    raise ConfigurationError(f"no host storage: set {STORAGE_CONNECTION} or {STORAGE_BLOB_SERVICE_URI}")
