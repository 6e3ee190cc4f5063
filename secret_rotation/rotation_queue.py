"""The Storage queue between intake and worker (the `JobQueue` port).

Messages are base64 text, the Functions host's default and what Event Grid writes when it delivers
straight to a queue, so both paths feed the same worker.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from .errors import TransientError
from .retries import RetryPolicy

if TYPE_CHECKING:
    from azure.storage.queue.aio import QueueClient


class StorageJobQueue:
    def __init__(self, client: QueueClient, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry
        self._ensured = False

    async def enqueue(self, body: str) -> None:
        from azure.core.exceptions import ResourceExistsError

        try:
            if not self._ensured:
                with contextlib.suppress(ResourceExistsError):
                    await self._retry.call(self._client.create_queue)
                self._ensured = True
            await self._retry.call(lambda: self._client.send_message(body))
        except Exception as exc:
            # Whatever the cause, the job is not queued: the caller must fail so the event comes again.
            raise TransientError(f"could not enqueue on {self._client.queue_name}: {exc.__class__.__name__}") from None

    async def close(self) -> None:
        await self._client.close()
