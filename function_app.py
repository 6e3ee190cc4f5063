"""Azure Functions entry point (Python v2 model): adapts triggers to the engine and nothing else.

on_secret_near_expiry  Event Grid push -> secret_rotation.intake (validate, drop stale, enqueue)
rotation_worker        Storage queue   -> secret_rotation.worker (run the rotation protocol)
sweep_due_secrets      timer           -> secret_rotation.sweep  (enqueue what events missed)
rotate_now             HTTP POST       -> secret_rotation.on_demand (an operator's "rotate now", enqueued)

Private deployments point Event Grid straight at the queue; the worker consumes both paths alike.
This is the only module that imports azure.functions.

Rotators beyond the built-ins come in through `build_service` (see secret_rotation/registry.py): installed
plugins named in ROTATION_ALLOWED_PLUGINS, and the deployment's own module named in
ROTATION_REGISTRATION_MODULE, whose `register_rotators(registry)` runs before the first job.
"""

from __future__ import annotations

import os
from typing import Any

import azure.functions as func

from secret_rotation.composition import Service, build_service
from secret_rotation.settings import QUEUE_NAME, STORAGE_CONNECTION, SWEEP_SCHEDULE, Settings

app = func.FunctionApp()

_service: Service | None = None


def service() -> Service:
    """Built on first use, then shared by every invocation of this worker process."""
    global _service  # noqa: PLW0603 (one composition root per process)
    if _service is None:
        _service = build_service(Settings.from_env(os.environ))
    return _service


def event_payload(event: func.EventGridEvent | func.CloudEvent) -> dict[str, Any]:
    """The event as it was delivered, in its own schema: that is what goes on the queue."""
    if isinstance(event, func.CloudEvent):
        payload = {
            "specversion": event.specversion,
            "id": event.id,
            "source": event.source,
            "type": event.type,
            "subject": event.subject,
            "time": event.time.isoformat() if event.time else None,
            "datacontenttype": event.datacontenttype,
            "data": event.get_json(),
            **event.extension_attrs,
        }
        return {key: value for key, value in payload.items() if value is not None}
    return {
        "id": event.id,
        "topic": event.topic,
        "subject": event.subject,
        "eventType": event.event_type,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
        "dataVersion": event.data_version,
        "metadataVersion": "1",
    }


@app.function_name("on_secret_near_expiry")
@app.event_grid_trigger(arg_name="event")
async def on_secret_near_expiry(event: func.EventGridEvent) -> None:
    await service().intake.accept(event_payload(event))


@app.function_name("rotation_worker")
@app.queue_trigger(arg_name="message", queue_name=f"%{QUEUE_NAME}%", connection=STORAGE_CONNECTION)
async def rotation_worker(message: func.QueueMessage) -> None:
    await service().worker.handle(message.get_body(), message_id=message.id or "unknown", attempt=message.dequeue_count)


@app.function_name("sweep_due_secrets")
@app.timer_trigger(arg_name="timer", schedule=f"%{SWEEP_SCHEDULE}%", run_on_startup=False)
async def sweep_due_secrets(timer: func.TimerRequest) -> None:
    await service().sweep.run()


@app.function_name("rotate_now")
@app.route(route="rotate", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
async def rotate_now(req: func.HttpRequest) -> func.HttpResponse:
    """POST {"vault": ..., "secret": ...} with the function key; 202 + correlation id (see docs/cli.md)."""
    answer = await service().on_demand.handle(req.get_body())
    return func.HttpResponse(answer.json(), status_code=answer.status, mimetype="application/json")
