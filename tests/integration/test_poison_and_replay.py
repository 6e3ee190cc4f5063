"""Poison handling and replay: a job that keeps failing lands in the poison queue with its reason in the
log; once the cause is fixed, the replay command re-drives it, and dead-lettered Event Grid events too,
through the same idempotent path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import astuple

import pytest
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.blob.aio import ContainerClient
from azure.storage.queue import TextBase64DecodePolicy
from azure.storage.queue.aio import QueueClient

import function_app
from secret_rotation.composition import Service, build_service
from secret_rotation.replay import DEFAULT_DEAD_LETTER_CONTAINER, poison_queue_name
from secret_rotation.replay import run as replay
from secret_rotation.settings import Settings
from tests.support.cli import run_cli
from tests.support.events import key_vault_event
from tests.support.host import MAX_DEQUEUE_COUNT, LocalFunctionsHost, app_host
from tests.support.stack import Postgres, outcomes, readable_values, seed_role_secret, unique

pytestmark = pytest.mark.integration


async def _poisoned_ids(env: dict[str, str]) -> list[str]:
    async with QueueClient.from_connection_string(
        env["AzureWebJobsStorage"],
        poison_queue_name(env["ROTATION_QUEUE_NAME"]),
        message_decode_policy=TextBase64DecodePolicy(),
    ) as poison:
        return [json.loads(m.content)["id"] for m in await poison.peek_messages(max_messages=32)]


UNREACHABLE = "postgresql://127.0.0.1:1"  # nothing listens on port 1


@pytest.fixture
async def service_allowing_unreachable(
    stack_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Service]:
    environ = {**stack_environ, "ROTATION_ALLOWED_SCOPES": f"{stack_environ['ROTATION_ALLOWED_SCOPES']},{UNREACHABLE}"}
    service = build_service(Settings.from_env(environ))
    monkeypatch.setattr(function_app, "_service", service)
    yield service
    await service.close()


async def test_a_job_that_keeps_failing_is_poisoned_then_replayed_once_fixed(
    service_allowing_unreachable: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    host = app_host()
    env = stack_environ
    name, role, version = astuple(
        await seed_role_secret(vault, postgres, leak_check, "poison", address=f"{UNREACHABLE}/postgres")
    )
    event = key_vault_event(env["KEYVAULT_URL"], name, version)
    await host.deliver_event(event)
    attempts = 0
    for _ in range(MAX_DEQUEUE_COUNT):
        batch = await host.drain_queue(env["AzureWebJobsStorage"], env["ROTATION_QUEUE_NAME"], visibility_timeout=1)
        attempts += len(batch)
        assert all(d.error is not None for d in batch)
        await asyncio.sleep(1.2)
    assert attempts == MAX_DEQUEUE_COUNT
    assert event["id"] in await _poisoned_ids(env)
    failures = [o for o in outcomes(caplog) if o["status"] == "SecretRotationFailed"]
    assert len(failures) == MAX_DEQUEUE_COUNT
    assert failures[-1]["attempt"] == MAX_DEQUEUE_COUNT and "unreachable" in str(failures[-1]["reason"])

    # Fix the cause (the tag of the current version), then replay the poison queue.
    current = await vault.get_secret(name)
    await vault.update_secret_properties(
        name, version, tags={**(current.properties.tags or {}), "ProviderAddress": postgres.address}
    )
    assert await replay("poison", DEFAULT_DEAD_LETTER_CONTAINER, env) >= 1
    assert event["id"] not in await _poisoned_ids(env)
    batch = await host.drain_queue(env["AzureWebJobsStorage"], env["ROTATION_QUEUE_NAME"])
    assert [d.error for d in batch] == [None]
    rotated = await vault.get_secret(name)
    leak_check.append(rotated.value or "")
    assert rotated.properties.version != version
    assert await postgres.logs_in(role, rotated.value or "")


async def test_dead_lettered_events_are_replayed_through_the_same_path(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    env = stack_environ
    name, role, version = astuple(await seed_role_secret(vault, postgres, leak_check, "poison"))
    event = key_vault_event(env["KEYVAULT_URL"], name, version, schema="cloudevents")
    dead_letter = [
        {
            **event,
            "deadLetterReason": "MaxDeliveryAttemptsExceeded",
            "deliveryAttempts": 30,
            "lastDeliveryOutcome": "TimedOut",
            "publishTime": "2026-11-23T08:00:00Z",
        }
    ]
    container = f"deadletter-{unique('t')}"
    async with ContainerClient.from_connection_string(env["AzureWebJobsStorage"], container) as blobs:
        await blobs.create_container()
        await blobs.upload_blob(f"kv-topic/rotation/2026/11/23/08/{name}.json", json.dumps(dead_letter))

        # Through the operator CLI, as the runbook says (its env overrides the stack file's queue name).
        result = await run_cli(
            "replay",
            "dead-letters",
            "--container",
            container,
            "--json",
            env={"ROTATION_QUEUE_NAME": env["ROTATION_QUEUE_NAME"]},
        )
        assert result.code == 0 and result.json() == {"source": "dead-letters", "replayed": 1}, result.err
        assert [b.name async for b in blobs.list_blobs()] == [], "a replayed blob is removed"

    batch = await host.drain_queue(env["AzureWebJobsStorage"], env["ROTATION_QUEUE_NAME"])
    assert [d.error for d in batch] == [None]
    rotated = await vault.get_secret(name)
    leak_check.append(rotated.value or "")
    assert rotated.properties.version != version and await postgres.logs_in(role, rotated.value or "")
    assert len(await readable_values(vault, name)) == 2
