"""The Core Tools helpers (scripts/core_tools.py), tested where `func` cannot run: the generated
local.settings.json resolves every binding expression and carries every setting the app reads, and works
(the app built from it reaches the stack); the event sender's request is the documented webhook delivery
and the app's Event Grid function accepts what it sends."""

from __future__ import annotations

import asyncio
import json
import re
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation import settings as app_settings
from secret_rotation.composition import build_service
from secret_rotation.events import SecretEvent, SecretEventType, parse_event
from secret_rotation.on_demand import OnDemandRequest
from secret_rotation.settings import Settings
from tests.support.host import LocalFunctionsHost, app_host
from tests.support.stack import Postgres, seed_role_secret, unique

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "core_tools.py"


async def _core_tools(*args: str) -> tuple[int, str]:
    """The helper as a developer runs it: `.venv/bin/python scripts/core_tools.py ...`."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(SCRIPT), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


# In Azure, host storage is identity-based (these three); locally the connection string replaces them.
IDENTITY_BASED_STORAGE = {
    app_settings.STORAGE_QUEUE_SERVICE_URI,
    app_settings.STORAGE_BLOB_SERVICE_URI,
    app_settings.STORAGE_CLIENT_ID,
}


def _binding_expressions() -> set[str]:
    return {
        name
        for fn in app_host().functions.values()
        for value in fn.get_trigger().get_dict_repr().values()
        if isinstance(value, str)
        for name in re.findall(r"%([A-Za-z0-9_]+)%", value)
    }


def _settings_the_app_reads() -> set[str]:
    """Every environment name settings.py declares (the one module that reads the environment)."""
    return {
        value
        for name, value in vars(app_settings).items()
        if name.isupper() and isinstance(value, str) and not name.startswith("DEFAULT_")
    }


async def test_generated_local_settings_resolve_every_binding_and_setting(
    stack_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "local.settings.json"
    code, output = await _core_tools("settings", "--out", str(out))
    assert code == 0, output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600, "it holds the storage key and identity header"
    values: dict[str, str] = json.loads(out.read_text())["Values"]

    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    expressions = _binding_expressions()
    assert expressions == {"ROTATION_QUEUE_NAME", "ROTATION_SWEEP_SCHEDULE"}
    assert all(values.get(name) for name in expressions), "every %NAME% of a binding has a value"
    # Every setting the app reads resolves: to the stack's value wherever the stack has one ...
    reads = _settings_the_app_reads()
    from_stack = {name: value for name, value in stack_env.items() if name in reads and value}
    assert {name: values.get(name) for name in from_stack} == from_stack
    assert {"AzureWebJobsStorage", "ROTATION_ALLOWED_VAULTS", "ROTATION_ALLOWED_SCOPES"} <= set(from_stack)
    # ... else to the app's own default (written out where the app has one) or to nothing where nothing is
    # needed locally: identity-based host storage, which the connection string replaces.
    settings = Settings.from_env(values)
    assert settings.queue_name == values["ROTATION_QUEUE_NAME"] and settings.storage.connection_string
    assert not IDENTITY_BASED_STORAGE & set(values), "locally the connection string is the storage"
    assert values["IDENTITY_ENDPOINT"] == stack_env["IDENTITY_ENDPOINT"], "the identity SDK's endpoint too"

    # The app built from exactly these values reaches the stack's vault with the stack's identity.
    for name in ("MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT", "IDENTITY_SERVER_THUMBPRINT"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    service = build_service(settings)
    try:
        answer = await service.on_demand.enqueue(OnDemandRequest(stack_env["KEYVAULT_URL"], unique("absent")))
    finally:
        await service.close()
    assert answer.status == 404, answer.body


@pytest.fixture
async def listener() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A local HTTP listener standing in for the host: records every request it gets."""
    seen: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        return web.Response(status=202)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_event_sender_posts_the_documented_webhook_delivery_that_the_app_accepts(
    listener: tuple[str, list[dict[str, Any]]],
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    url, seen = listener
    seeded = await seed_role_secret(vault, postgres, leak_check, "core-tools")
    code, output = await _core_tools("send-event", seeded.name, "--host", url)
    assert code == 0 and "HTTP 202" in output, output

    (request,) = seen
    # Microsoft Learn, "How to work with Event Grid triggers and bindings in Azure Functions", "Manually post
    # the request": "Set a Content-Type: application/json header. Set an aeg-event-type: Notification
    # header. [...] Post to the URL of the Event Grid trigger function [...]
    # http://localhost:7071/runtime/webhooks/eventgrid?functionName={FUNCTION_NAME}"
    assert request["method"] == "POST"
    assert request["path"].lower() == "/runtime/webhooks/eventgrid"
    assert request["query"] == {"functionName": "on_secret_near_expiry"}
    assert request["headers"]["aeg-event-type"] == "Notification"
    assert request["headers"]["Content-Type"] == "application/json"
    events = json.loads(request["body"])
    assert isinstance(events, list) and len(events) == 1, "Event Grid delivers an array of events"

    parsed = parse_event(events[0])
    assert isinstance(parsed, SecretEvent) and parsed.event_type is SecretEventType.NEAR_EXPIRY
    assert (parsed.secret_name, parsed.version) == (seeded.name, seeded.version)
    # What the host would hand the registered Event Grid function: it accepts it and enqueues the job.
    await host.deliver_event(events[0])
    deliveries = await host.drain_queue(stack_environ["AzureWebJobsStorage"], stack_environ["ROTATION_QUEUE_NAME"])
    assert [d.error for d in deliveries] == [None]
    rotated = await vault.get_secret(seeded.name)
    leak_check.append(rotated.value or "")
    assert rotated.properties.version != seeded.version
