"""The reconciliation sweep against a vault of its own, and outcome events on the local topic."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.queue import TextBase64DecodePolicy
from azure.storage.queue.aio import QueueClient

from secret_rotation.composition import build_service
from secret_rotation.errors import AccessDeniedError
from secret_rotation.pending import pending_name
from secret_rotation.settings import Settings
from tests.support.events import key_vault_event
from tests.support.figures import record_figure
from tests.support.host import LocalFunctionsHost
from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import Postgres, near_expiry, open_vault, seed_role_secret, time_shift, unique

pytestmark = pytest.mark.integration


@pytest.fixture
async def second_vault(stack_environ: dict[str, str]) -> AsyncIterator[SecretClient]:
    """The stack's second vault, emptied: the sweep's population is exactly what the test seeds."""
    async with open_vault(stack_environ, stack_environ["KEYVAULT_URL_2"]) as client:
        async for props in client.list_properties_of_secrets():
            await client.delete_secret(props.name or "")
            await client.purge_deleted_secret(props.name or "")  # soft delete keeps the name until purged
        yield client


async def test_the_sweep_finds_exactly_the_due_and_stuck_secrets(
    stack_environ: dict[str, str], second_vault: SecretClient, http: aiohttp.ClientSession
) -> None:
    env = stack_environ
    vault2 = env["KEYVAULT_URL_2"]
    now = datetime.now(UTC)
    tagged = {
        "RotatorType": "postgres-role",
        "CredentialId": "r",
        "ProviderAddress": "postgresql://127.0.0.1:55432/x",
        "ValidityPeriodDays": "60",
    }

    async def put(name: str, tags: dict[str, str], expires: datetime | None, enabled: bool = True) -> None:
        await second_vault.set_secret(name, "placeholder-value", tags=tags, expires_on=expires, enabled=enabled)

    await put("stuck", tagged, now + timedelta(days=200))
    await put(
        pending_name("stuck"),
        {
            "RotationPendingFor": "stuck",
            "RotationStep": "applied",
            "RotationBaseVersion": "x",
            "RotationId": "r",
            "CredentialId": "r",
        },
        None,
    )
    await time_shift(env, days=0, seconds=2 * 3600, vault=vault2)  # the stuck record is now two hours old
    await put("due", tagged, now + timedelta(days=10))
    await put("expired", tagged, now - timedelta(days=1))
    await put("not-due", tagged, now + timedelta(days=60))
    await put("no-expiry", tagged, None)
    await put("untagged", {}, now + timedelta(days=1))
    await put("disabled", tagged, now + timedelta(days=1), enabled=False)
    await put("in-flight", tagged, now + timedelta(days=200))
    await put(
        pending_name("in-flight"),
        {
            "RotationPendingFor": "in-flight",
            "RotationStep": "created",
            "RotationBaseVersion": "x",
            "RotationId": "r",
            "CredentialId": "r",
        },
        None,
    )
    await put(
        pending_name("finished"),
        {
            "RotationPendingFor": "finished",
            "RotationStep": "completed",
            "RotationBaseVersion": "x",
            "RotationId": "r",
            "CredentialId": "r",
        },
        None,
    )
    for index in range(40):  # more than one page (the double pages by 25)
        await put(f"filler-{index}", {}, now + timedelta(days=1))

    queue_name = unique("sweep")
    environ = {**env, "ROTATION_ALLOWED_VAULTS": vault2, "ROTATION_QUEUE_NAME": queue_name}
    service = build_service(Settings.from_env(environ))
    double = KeyVaultDouble(http, env["KEYVAULT_MANAGEMENT_URL"], vault2)
    await double.call("POST", "requests/reset")
    try:
        report = await service.sweep.run()
    finally:
        await service.close()
    counts = await double.counts()

    found = {(s.name, s.reason) for s in report.enqueued}
    expected = {("due", "near-expiry"), ("expired", "expired"), ("stuck", "stuck")}
    record_figure("sweep: secrets listed", report.listed)
    record_figure("sweep: due found / expected", f"{sorted(n for n, _ in found)} / {sorted(n for n, _ in expected)}")
    assert found == expected
    assert report.listed == 51
    assert counts.get("get", 0) == 0, "the sweep reads properties only, never a value"
    assert counts["total"] == counts["list"] == 3, "one listing (51 secrets, pages of 25), no version listings"
    async with QueueClient.from_connection_string(
        env["AzureWebJobsStorage"], queue_name, message_decode_policy=TextBase64DecodePolicy()
    ) as queue:
        events = [json.loads(m.content) for m in await queue.peek_messages(max_messages=32)]
    assert sorted(e["subject"] for e in events) == ["due", "expired", "stuck"]
    # Jobs name no version: the worker resolves the current one under the lock.
    assert {e["data"]["Version"] for e in events} == {None}


async def test_a_denied_listing_fails_the_sweep_as_access_denied(
    stack_environ: dict[str, str], second_vault: SecretClient, http: aiohttp.ClientSession
) -> None:
    """The adapter lists through `send_request` and reads Key Vault's error body itself: a listing the
    identity may not make (403 ForbiddenByRbac, GetSecrets needs secrets/list at the vault's scope) is an
    access-denied error naming the code, not a retry and not an empty vault."""
    vault2 = stack_environ["KEYVAULT_URL_2"]
    await second_vault.set_secret(unique("denied"), "placeholder-value", expires_on=near_expiry())
    environ = {**stack_environ, "ROTATION_ALLOWED_VAULTS": vault2, "ROTATION_QUEUE_NAME": unique("sweep-denied")}
    service = build_service(Settings.from_env(environ))
    double = KeyVaultDouble(http, stack_environ["KEYVAULT_MANAGEMENT_URL"], vault2)
    await double.deny({"secret": "*", "deny": ["list"]})
    try:
        with pytest.raises(AccessDeniedError, match=r"access denied \(403 Forbidden/ForbiddenByRbac"):
            await service.sweep.run()
    finally:
        await double.reset()
        await service.close()


async def test_a_sweep_job_rotates_the_current_version_among_versions_of_one_second(
    stack_environ: dict[str, str], second_vault: SecretClient, postgres: Postgres, leak_check: list[str]
) -> None:
    """Key Vault lists versions by id and `created` has one-second resolution: the sweep names no version,
    and the worker takes the current one from a versionless read, never from the listing's order."""
    env, vault2 = stack_environ, stack_environ["KEYVAULT_URL_2"]
    seeded = await seed_role_secret(second_vault, postgres, leak_check, "same-second")
    current = await second_vault.get_secret(seeded.name)
    written = [seeded.version]
    for _ in range(4):  # the same value and tags again: versions written within the same second or so
        again = await second_vault.set_secret(
            seeded.name, current.value or "", tags=current.properties.tags, expires_on=near_expiry()
        )
        written.append(again.properties.version or "")
    listed = [p async for p in second_vault.list_properties_of_secret_versions(seeded.name)]
    seconds = {p.created_on for p in listed}
    record_figure("same-second sweep: versions / distinct created seconds", f"{len(listed)} / {len(seconds)}")
    assert len(seconds) < len(listed), "some versions share a created second (the case under test)"
    by_created = max(listed, key=lambda p: p.created_on or datetime.min.replace(tzinfo=UTC)).version

    queue_name = unique("sweep-same-second")
    environ = {**env, "ROTATION_ALLOWED_VAULTS": vault2, "ROTATION_QUEUE_NAME": queue_name}
    service = build_service(Settings.from_env(environ))
    try:
        report = await service.sweep.run()
        assert [s.name for s in report.enqueued] == [seeded.name]
        async with QueueClient.from_connection_string(env["AzureWebJobsStorage"], queue_name) as queue:
            [job] = [m.content async for m in queue.receive_messages()]
        outcome = await service.worker.handle(job)
    finally:
        await service.close()

    assert outcome.status.value == "SecretRotated", outcome
    assert outcome.from_version == written[-1], (outcome.from_version, written, by_created)
    rotated = await second_vault.get_secret(seeded.name)
    leak_check.append(rotated.value or "")
    assert (rotated.properties.tags or {})["RotatedFromVersion"] == written[-1]


async def _published(env: dict[str, str]) -> list[dict[str, Any]]:
    context = ssl.create_default_context(cafile=env["KEYVAULT_CA_BUNDLE"])
    async with (
        aiohttp.ClientSession() as session,
        session.get(env["OUTCOME_TOPIC_EVENTS_URL"], ssl=context) as response,
    ):
        response.raise_for_status()
        events: list[dict[str, Any]] = await response.json()
    return events


async def test_rotations_and_failures_publish_one_outcome_event_each(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    env = stack_environ
    role, password = await postgres.create_role("outcome")
    leak_check.append(password)
    tags = {
        "RotatorType": "postgres-role",
        "CredentialId": role,
        "ProviderAddress": postgres.address,
        "ValidityPeriodDays": "60",
    }
    good, bad = unique("outcome-ok"), unique("outcome-bad")
    ok = await vault.set_secret(good, password, tags=tags, expires_on=near_expiry())
    broken = await vault.set_secret(bad, password, tags={**tags, "ValidityPeriodDays": "30"}, expires_on=near_expiry())
    ok_event = key_vault_event(env["KEYVAULT_URL"], good, ok.properties.version or "")
    bad_event = key_vault_event(env["KEYVAULT_URL"], bad, broken.properties.version or "")

    await host.deliver_queue_message(json.dumps(ok_event))
    await host.deliver_queue_message(json.dumps(bad_event))
    leak_check.append((await vault.get_secret(good)).value or "")

    received = await _published(env)
    mine = {
        e["event"]["data"]["correlation_id"]: e
        for e in received
        if e["event"].get("data", {}).get("correlation_id") in (ok_event["id"], bad_event["id"])
    }
    assert set(mine) == {ok_event["id"], bad_event["id"]}
    rotated, failed = mine[ok_event["id"]], mine[bad_event["id"]]
    assert rotated["event"]["eventType"] == "SecretRotation.SecretRotated"
    assert rotated["event"]["subject"].endswith(f"/secrets/{good}")
    assert failed["event"]["eventType"] == "SecretRotation.SecretRotationFailed"
    assert "ValidityPeriodDays=30" in failed["event"]["data"]["reason"]
    assert {rotated["auth"], failed["auth"]} == {"token"}, "published with the managed identity, no key"
    assert sum(1 for e in received if e["event"].get("data", {}).get("correlation_id") == ok_event["id"]) == 1
