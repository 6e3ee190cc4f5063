"""The Storage queue between intake and worker (the `JobQueue` port).

Messages are written as base64 text (`host_storage.queue_client`). The host is configured with
`messageEncoding: none` (host.json), so it hands every message to the worker unchanged, and the worker
accepts base64 and raw JSON alike (`events.decode_payload`): whichever form Event Grid writes when it
delivers straight to the queue, neither is rejected before the worker sees it.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .errors import InvalidEventError, TransientError
from .retries import RetryPolicy

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient


class StorageJobQueue:
    def __init__(self, client: QueueClient, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry
        self._ensured = False

    async def enqueue(self, body: str) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        try:
            if not self._ensured:
                with contextlib.suppress(ResourceExistsError):
                    await self._retry.call(self._client.create_queue)
                self._ensured = True
            await self._retry.call(lambda: self._client.send_message(body))
        except HttpResponseError as exc:
            if exc.status_code == 413:
                # No retry or replay can shrink the event: permanent, so Event Grid stops redelivering it.
                code = getattr(exc, "error_code", None) or getattr(exc.error, "code", None) or "RequestBodyTooLarge"
                code = getattr(code, "value", code)  # the Storage SDK's StorageErrorCode enum
                raise InvalidEventError(
                    f"event too large to enqueue on {self._client.queue_name} (413 {code}: a queue message "
                    f"holds at most 64 KiB, this event is {len(body.encode())} bytes before encoding)"
                ) from None
            raise TransientError(f"could not enqueue on {self._client.queue_name}: {exc.__class__.__name__}") from None
        except Exception as exc:
            # Whatever the cause, the job is not queued: the caller must fail so the event comes again.
            raise TransientError(f"could not enqueue on {self._client.queue_name}: {exc.__class__.__name__}") from None

    async def close(self) -> None:
        await self._client.close()
