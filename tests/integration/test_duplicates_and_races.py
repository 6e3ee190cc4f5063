"""At-least-once delivery and scale-out: duplicates, concurrent workers and distinct events for one
version all end in exactly one rotation and one provider change."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient

import function_app
from rotators.postgres_dual_user import PostgresDualUserRotator
from rotators.postgres_role import PostgresRoleRotator
from secret_rotation.composition import Service, build_service
from secret_rotation.outcomes import Status
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import ApplyRequest
from secret_rotation.settings import Settings
from secret_rotation.worker import RetryableFailure
from tests.support.events import key_vault_event
from tests.support.figures import record_figure
from tests.support.host import app_host
from tests.support.stack import Postgres, readable_values, seed_role_secret

pytestmark = pytest.mark.integration


class CountingRole(PostgresRoleRotator):
    applies: ClassVar[int] = 0

    async def apply(self, request: ApplyRequest) -> None:
        type(self).applies += 1
        await super().apply(request)


class CountingDual(PostgresDualUserRotator):
    applies: ClassVar[int] = 0

    async def apply(self, request: ApplyRequest) -> None:
        type(self).applies += 1
        await super().apply(request)


def counting_registry() -> RotatorRegistry:
    registry = RotatorRegistry(builtins={})
    registry.register(CountingRole)
    registry.register(CountingDual)
    return registry


@pytest.fixture
async def counting_service(stack_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Service]:
    CountingRole.applies = CountingDual.applies = 0
    service = build_service(Settings.from_env(stack_environ), counting_registry())
    monkeypatch.setattr(function_app, "_service", service)
    yield service
    await service.close()


async def _rotations(vault: SecretClient, name: str, leak: list[str]) -> int:
    versions = await readable_values(vault, name)
    leak.extend(value for _, value, _ in versions)
    return len(versions) - 1


async def test_the_same_event_delivered_100_times_rotates_once(
    counting_service: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    seeded = await seed_role_secret(vault, postgres, leak_check, "dup")
    name, version = seeded.name, seeded.version
    body = json.dumps(key_vault_event(stack_environ["KEYVAULT_URL"], name, version))
    async with QueueClient.from_connection_string(
        stack_environ["AzureWebJobsStorage"],
        stack_environ["ROTATION_QUEUE_NAME"],
        message_encode_policy=TextBase64EncodePolicy(),
    ) as queue:
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        await asyncio.gather(*(queue.send_message(body) for _ in range(100)))
    host = app_host()
    delivered = 0
    while batch := await host.drain_queue(stack_environ["AzureWebJobsStorage"], stack_environ["ROTATION_QUEUE_NAME"]):
        assert all(d.error is None for d in batch)
        delivered += len(batch)

    rotations = await _rotations(vault, name, leak_check)
    record_figure("duplicate deliveries of one event", delivered)
    record_figure("rotations performed for 100 duplicates", rotations)
    record_figure("provider changes for 100 duplicates", CountingRole.applies)
    assert (delivered, rotations, CountingRole.applies) == (100, 1, 1)


async def test_ten_workers_at_once_rotate_once(
    stack_environ: dict[str, str], vault: SecretClient, postgres: Postgres, leak_check: list[str]
) -> None:
    CountingRole.applies = 0
    seeded = await seed_role_secret(vault, postgres, leak_check, "dup")
    name, version = seeded.name, seeded.version
    body = json.dumps(key_vault_event(stack_environ["KEYVAULT_URL"], name, version))
    # Ten instances: each its own clients, identity and lock client, as on ten Function App hosts.
    services = [build_service(Settings.from_env(stack_environ), counting_registry()) for _ in range(10)]
    try:
        results = await asyncio.gather(*(s.worker.handle(body) for s in services), return_exceptions=True)
        statuses = [r.outcome.status if isinstance(r, RetryableFailure) else getattr(r, "status", r) for r in results]
        assert statuses.count(Status.ROTATED) == 1, statuses
        assert set(statuses) <= {Status.ROTATED, Status.DEFERRED, Status.SKIPPED}, statuses
        # The deferred ones come back from the queue later and find the work done.
        for service, status in zip(services, statuses, strict=True):
            if status is Status.DEFERRED:
                assert (await service.worker.handle(body)).status is Status.SKIPPED
    finally:
        for service in services:
            await service.close()

    rotations = await _rotations(vault, name, leak_check)
    record_figure("concurrent workers on one secret", len(services))
    record_figure("rotations performed by 10 concurrent workers", rotations)
    record_figure("provider changes by 10 concurrent workers", CountingRole.applies)
    assert (rotations, CountingRole.applies) == (1, 1)


async def test_near_expiry_then_expired_for_one_version_rotate_once(
    counting_service: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    seeded = await seed_role_secret(vault, postgres, leak_check, "dup")
    name, version = seeded.name, seeded.version
    vault_url = stack_environ["KEYVAULT_URL"]
    near = key_vault_event(vault_url, name, version, kind="near_expiry")
    expired = key_vault_event(vault_url, name, version, kind="expired")
    host = app_host()
    for event in (near, expired):
        await host.deliver_queue_message(json.dumps(event))
    assert (await _rotations(vault, name, leak_check), CountingRole.applies) == (1, 1)
