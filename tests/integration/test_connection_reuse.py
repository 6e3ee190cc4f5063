"""One connection pool for every SDK client (issue 10 item 5): the local CA is loaded once into a shared
aiohttp connector, so rotations reuse connections as in production instead of a new TLS handshake per
Key Vault request, and the rotators' management clients (`ProviderContext.transport`) share it too.
Counted at the transport with aiohttp's trace hooks on the shared session."""

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
from secret_rotation.rotator import ProviderContext
from secret_rotation.settings import Settings
from secret_rotation.transport import SharedHttp
from tests.support.events import key_vault_event
from tests.support.management import storage_keys
from tests.support.stack import Postgres, near_expiry, seed_role_secret, unique

pytestmark = pytest.mark.integration


def counting() -> tuple[aiohttp.TraceConfig, Counter[str], Counter[str]]:
    """(trace config, requests per host, connections: "new" in all and per host)."""
    requests: Counter[str] = Counter()
    connections: Counter[str] = Counter()
    config = aiohttp.TraceConfig()

    async def on_request_start(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        context.host = urlsplit(str(params.url)).netloc  # one context per request, seen by its other hooks

    async def on_request_end(_: aiohttp.ClientSession, __: SimpleNamespace, params: Any) -> None:
        requests[urlsplit(str(params.url)).netloc] += 1

    async def on_connection_create_end(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        connections["new"] += 1
        connections[context.host] += 1

    config.on_request_start.append(on_request_start)
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


async def test_a_second_storage_key_rotation_opens_no_new_connection_to_the_management_plane(
    stack_environ: dict[str, str], vault: SecretClient, management_context: ProviderContext, leak_check: list[str]
) -> None:
    config, requests, connections = counting()
    environ = {**stack_environ, "ROTATION_QUEUE_NAME": stack_environ["ROTATION_QUEUE_NAME"] + "-arm-pool"}
    service = build_service(
        Settings.from_env(environ), http=SharedHttp(stack_environ["KEYVAULT_CA_BUNDLE"], trace_configs=[config])
    )
    address = stack_environ["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    management = urlsplit(stack_environ["ROTATION_ARM_ENDPOINT"]).netloc
    try:
        for round_, held in enumerate(("key1", "key2")):
            # Microsoft's tutorial shape, holding the key the last rotation did not regenerate.
            keys = await storage_keys(management_context, address)
            leak_check.extend(keys.values())
            tags = {"CredentialId": held, "ProviderAddress": address, "ValidityPeriodDays": "60"}
            name = unique("arm-pool")
            secret = await vault.set_secret(name, keys[held], tags=tags, expires_on=near_expiry())
            event = key_vault_event(stack_environ["KEYVAULT_URL"], name, secret.properties.version or "")
            await service.intake.accept(event)
            outcome = await service.worker.handle(json.dumps(event))
            assert outcome.status is Status.ROTATED, outcome.reason
            if round_ == 0:
                warm = connections[management]
                requests.clear()
    finally:
        await service.close()
    leak_check.extend((await storage_keys(management_context, address)).values())

    # regenerateKey, listKeys and the account's properties went through the shared pool...
    assert requests[management] >= 3, requests
    # ...over the connection the first rotation opened: no new TLS handshake with ARM.
    assert warm >= 1 and connections[management] == warm, connections
