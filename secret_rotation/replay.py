"""Replay: re-drive poison messages and Event Grid dead letters through the normal, idempotent path.

The one implementation behind the operator CLI's `replay` command (docs/cli.md):

    secret-rotation replay poison                 # <queue>-poison  -> the rotation queue
    secret-rotation replay dead-letters [--container eventgrid-deadletter]

Settings come from the environment like the app's (`AzureWebJobsStorage` locally; the service URIs in
Azure, with the operator's or the app's identity). Each message or blob is removed only after its
events are back on the rotation queue, so a replay interrupted half-way loses nothing; replaying an
event twice is harmless because the worker skips work that is already done.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from .errors import InvalidEventError
from .host_storage import container_client, queue_client
from .ports import JobQueue
from .retries import RetryPolicy
from .rotation_queue import StorageJobQueue
from .settings import Settings

if TYPE_CHECKING:
    from azure.storage.blob.aio import ContainerClient
    from azure.storage.queue.aio import QueueClient

logger = logging.getLogger("secret_rotation")

DEFAULT_DEAD_LETTER_CONTAINER = "eventgrid-deadletter"
# Fields Event Grid adds to a dead-lettered event; the replayed event is the original without them.
DEAD_LETTER_FIELDS = frozenset(
    {
        "deadLetterReason",
        "deliveryAttempts",
        "lastDeliveryOutcome",
        "lastHttpStatusCode",
        "publishTime",
        "lastDeliveryAttemptTime",
        "deliveryResult",
    }
)


def poison_queue_name(queue_name: str) -> str:
    return f"{queue_name}-poison"


def original_events(blob_text: str | bytes) -> list[dict[str, Any]]:
    document = json.loads(blob_text)
    events = document if isinstance(document, list) else [document]
    if not all(isinstance(event, dict) for event in events):
        raise InvalidEventError("a dead-letter blob must hold JSON event objects")
    return [{k: v for k, v in event.items() if k not in DEAD_LETTER_FIELDS} for event in events]


class Replayer:
    def __init__(self, queue: JobQueue, poison: QueueClient, dead_letters: ContainerClient) -> None:
        self._queue = queue
        self._poison = poison
        self._dead_letters = dead_letters

    async def replay_poison(self) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        replayed = 0
        try:
            while True:
                batch = [m async for m in self._poison.receive_messages(max_messages=32, visibility_timeout=60)]
                if not batch:
                    return replayed
                for message in batch:
                    await self._queue.enqueue(message.content)
                    await self._poison.delete_message(message)
                    replayed += 1
        except ResourceNotFoundError:
            return replayed  # no poison queue: nothing ever failed for good

    async def replay_dead_letters(self) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        replayed = 0
        try:
            async for blob in self._dead_letters.list_blobs():
                downloader = await self._dead_letters.download_blob(blob.name)
                for event in original_events(await downloader.readall()):
                    await self._queue.enqueue(json.dumps(event))
                    replayed += 1
                await self._dead_letters.delete_blob(blob.name)
        except ResourceNotFoundError:
            return replayed
        return replayed


async def run(command: str, container: str, env: dict[str, str]) -> int:
    from azure.identity.aio import DefaultAzureCredential

    settings = Settings.from_env(env)
    # An operator tool: the operator's identity (or the app's, where it runs), never a key.
    credential = DefaultAzureCredential(
        exclude_interactive_browser_credential=True, managed_identity_client_id=settings.managed_identity_client_id
    )
    retry = RetryPolicy(budget_seconds=settings.retry_budget_seconds)
    queue = StorageJobQueue(queue_client(settings.storage, credential, settings.queue_name), retry)
    poison = queue_client(settings.storage, credential, poison_queue_name(settings.queue_name))
    dead_letters = container_client(settings.storage, credential, container)
    async with credential, poison, dead_letters:
        replayer = Replayer(queue, poison, dead_letters)
        count = await (replayer.replay_poison() if command == "poison" else replayer.replay_dead_letters())
        await queue.close()
    logger.info("ReplayCompleted source=%s replayed=%d", command, count)
    return count
