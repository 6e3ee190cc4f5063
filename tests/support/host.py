"""Plays the Functions host's part for tests and the demo (Core Tools cannot be installed here).

It indexes the app once (`app.get_functions()` may be called once per app instance), turns event JSON
into `func.EventGridEvent` / `func.CloudEvent` with azure-functions' own input converter, and drains the
Storage queue into `rotation_worker` as the queue extension would with host.json's `messageEncoding:
none`: the message text handed over unchanged (the worker decodes base64 or raw JSON), deleted after
success, left for redelivery after a failure, and moved to `<queue>-poison` once it has failed
`maxDequeueCount` times (read from host.json).
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import azure.functions as func
from azure.core.exceptions import ResourceExistsError
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.queue import QueueMessageInConverter

MAX_DEQUEUE_COUNT: int = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())["extensions"][
    "queues"
]["maxDequeueCount"]


@dataclass
class Delivery:
    message_id: str
    dequeue_count: int
    error: BaseException | None


def event_grid_input(payload: dict[str, Any]) -> func.EventGridEvent | func.CloudEvent:
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(payload), "json"), trigger_metadata={})


class LocalFunctionsHost:
    def __init__(self, app_module: ModuleType) -> None:
        self.app_module = app_module
        self.functions = {fn.get_function_name(): fn for fn in app_module.app.get_functions()}

    async def deliver_event(self, payload: dict[str, Any]) -> None:
        handler = self.functions["on_secret_near_expiry"].get_user_function()
        await handler(event_grid_input(payload))

    async def deliver_queue_message(self, body: str, *, message_id: str = "local", dequeue_count: int = 1) -> None:
        """The message text as the host hands it over with `messageEncoding: none`, through azure-functions'
        own queue input converter."""
        handler = self.functions["rotation_worker"].get_user_function()
        metadata = {"Id": meta.Datum(message_id, "string"), "DequeueCount": meta.Datum(str(dequeue_count), "json")}
        message = QueueMessageInConverter.decode(meta.Datum(body, "string"), trigger_metadata=metadata)
        await handler(message)

    async def drain_queue(
        self, connection_string: str, queue_name: str, *, visibility_timeout: int = 30
    ) -> list[Delivery]:
        """One receive of up to 16 messages, each delivered to `rotation_worker`."""
        from azure.storage.queue.aio import QueueClient

        deliveries: list[Delivery] = []
        async with (
            QueueClient.from_connection_string(connection_string, queue_name) as queue,
            QueueClient.from_connection_string(connection_string, f"{queue_name}-poison") as poison,
        ):
            async for message in queue.receive_messages(visibility_timeout=visibility_timeout, max_messages=16):
                error: BaseException | None = None
                attempt = message.dequeue_count or 1
                try:
                    await self.deliver_queue_message(message.content, message_id=message.id, dequeue_count=attempt)
                except Exception as exc:
                    error = exc
                    if attempt >= MAX_DEQUEUE_COUNT:
                        with contextlib.suppress(ResourceExistsError):
                            await poison.create_queue()
                        await poison.send_message(message.content)
                        await queue.delete_message(message)
                else:
                    await queue.delete_message(message)
                deliveries.append(Delivery(message.id, attempt, error))
        return deliveries


@functools.cache
def app_host() -> LocalFunctionsHost:
    """The one host of this process's function_app (its functions can be indexed only once)."""
    import function_app

    return LocalFunctionsHost(function_app)
