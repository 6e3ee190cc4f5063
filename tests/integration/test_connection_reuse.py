"""One connection pool for every SDK client (issue 10 item 5): the local CA is loaded once into a shared
aiohttp connector, so rotations reuse connections as in production instead of a new TLS handshake per
Key Vault request. Counted at the transport with aiohttp's trace hooks on the shared session."""

from __future__ import annotations

import json
from collections import Counter
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.composition import build_service
from secret_rotation.outcomes import Status
from secret_rotation.settings import Settings
from secret_rotation.transport import SharedHttp
from tests.support.events import key_vault_event
from tests.support.stack import Postgres, seed_role_secret

pytestmark = pytest.mark.integration


def counting() -> tuple[aiohttp.TraceConfig, Counter[str], Counter[str]]:
    requests: Counter[str] = Counter()
    connections: Counter[str] = Counter()
    config = aiohttp.TraceConfig()

    async def on_request_end(_: aiohttp.ClientSession, __: SimpleNamespace, params: Any) -> None:
        requests[urlsplit(str(params.url)).netloc] += 1

    async def on_connection_create_end(_: aiohttp.ClientSession, __: SimpleNamespace, params: Any) -> None:
        connections["new"] += 1

    config.on_request_end.append(on_request_end)
    config.on_connection_create_end.append(on_connection_create_end)
    return config, requests, connections


async def test_rotations_reuse_the_pooled_connections_of_every_client(
    stack_environ: dict[str, str], vault: SecretClient, postgres: Postgres, leak_check: list[str]
) -> None:
    config, requests, connections = counting()
    environ = {**stack_environ, "ROTATION_QUEUE_NAME": stack_environ["ROTATION_QUEUE_NAME"] + "-pool"}
    service = build_service(
        Settings.from_env(environ), http=SharedHttp(stack_environ["KEYVAULT_CA_BUNDLE"], trace_configs=[config])
    )
    vault_url = stack_environ["KEYVAULT_URL"]
    try:
        for round_ in range(3):
            seeded = await seed_role_secret(vault, postgres, leak_check, "pool")
            event = key_vault_event(vault_url, seeded.name, seeded.version)
            await service.intake.accept(event)
            outcome = await service.worker.handle(json.dumps(event))
            assert outcome.status is Status.ROTATED, outcome.reason
            if round_ == 0:
                warm = connections["new"]
                requests.clear()
    finally:
        await service.close()

    endpoints = dict(part.split("=", 1) for part in environ["AzureWebJobsStorage"].split(";") if "=" in part)
    storage = {urlsplit(endpoints[key]).netloc for key in ("QueueEndpoint", "BlobEndpoint")}
    # Key Vault and Azurite's queue and blob services all went through the one pool...
    assert requests[urlsplit(vault_url).netloc] >= 2 * 10
    assert all(requests[host] >= 2 for host in storage), requests
    # ...and once warm, two more rotations (about 30 requests) opened no new connection.
    assert connections["new"] == warm
