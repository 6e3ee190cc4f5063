"""A Key Vault event through both registered functions, Azurite's queue, the Key Vault double and
PostgreSQL: the acceptance path of the foundation, for both patterns and both event schemas."""

from __future__ import annotations

import json
from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.pending import pending_name
from tests.support.events import key_vault_event
from tests.support.host import LocalFunctionsHost
from tests.support.stack import Postgres, outcomes, seed_dual_secret, seed_role_secret, time_shift

pytestmark = pytest.mark.integration


async def _deliver(host: LocalFunctionsHost, env: dict[str, str], event: dict[str, object]) -> int:
    """Event Grid push, then one drain of the queue; returns how many messages the worker got."""
    await host.deliver_event(event)
    deliveries = await host.drain_queue(env["AzureWebJobsStorage"], env["ROTATION_QUEUE_NAME"])
    assert all(d.error is None for d in deliveries), [repr(d.error) for d in deliveries]
    return len(deliveries)


async def _versions(vault: SecretClient, name: str) -> int:
    return len([v async for v in vault.list_properties_of_secret_versions(name)])


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
async def test_single_credential_rotates_end_to_end(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
    schema: str,
) -> None:
    name, role, version = astuple(await seed_role_secret(vault, postgres, leak_check, "e2e"))
    old = (await vault.get_secret(name)).value or ""
    event = key_vault_event(stack_environ["KEYVAULT_URL"], name, version, schema=schema)

    assert await _deliver(host, stack_environ, event) == 1
    rotated = await vault.get_secret(name)
    new_password = rotated.value or ""
    leak_check.append(new_password)
    assert rotated.properties.version != version
    assert await postgres.logs_in(role, new_password), "the new version logs in"
    assert not await postgres.logs_in(role, old), "the old password no longer does"
    expected_expiry = datetime.now(UTC) + timedelta(days=60)
    assert rotated.properties.expires_on is not None
    assert abs((rotated.properties.expires_on - expected_expiry).total_seconds()) < 300
    assert rotated.properties.tags is not None and rotated.properties.tags["CredentialId"] == role
    pending = [p async for p in vault.list_properties_of_secret_versions(pending_name(name))]
    assert [(p.enabled, (p.tags or {}).get("RotationStep")) for p in pending] == [(False, "completed")]
    assert [o["status"] for o in outcomes(caplog)] == ["RotationEnqueued", "SecretRotated"]

    # The same event again, and an event for the older version: nothing more happens.
    assert await _deliver(host, stack_environ, event) == 0
    assert await _deliver(host, stack_environ, key_vault_event(stack_environ["KEYVAULT_URL"], name, version)) == 0
    # Even a duplicate that was already queued before the first rotation finished changes nothing.
    await host.deliver_queue_message(json.dumps(event))
    assert await _versions(vault, name) == 2
    assert await postgres.logs_in(role, new_password)


async def test_dual_credential_alternates_users_and_keeps_the_previous_one_working(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    # 45 days: after the 20-day time shift below, the second version is inside the near-expiry window.
    seeded = await seed_dual_secret(
        vault,
        postgres,
        leak_check,
        "e2e-dual",
        content_type="application/json",
        green_password=True,
        ValidityPeriodDays="45",
    )
    name, blue, green = seeded.name, seeded.blue, seeded.green
    blue_password, green_password = seeded.blue_password, seeded.green_password

    vault_url = stack_environ["KEYVAULT_URL"]
    assert await _deliver(host, stack_environ, key_vault_event(vault_url, name, seeded.version)) == 1
    second = await vault.get_secret(name)
    document = json.loads(second.value or "{}")
    leak_check.append(document["password"])
    assert document["username"] == green and second.properties.tags
    assert second.properties.tags["CredentialId"] == green and second.properties.tags["AlternateCredentialId"] == blue
    assert second.properties.content_type == "application/json"
    assert await postgres.logs_in(green, document["password"])
    assert not await postgres.logs_in(green, green_password)
    assert await postgres.logs_in(blue, blue_password), "readers of the previous version keep working"

    # Let 20 days pass on the vault's clock: the new version is due, and the next rotation changes blue.
    await time_shift(stack_environ, days=20)
    assert second.properties.version
    assert await _deliver(host, stack_environ, key_vault_event(vault_url, name, second.properties.version)) == 1
    third = await vault.get_secret(name)
    third_document = json.loads(third.value or "{}")
    leak_check.append(third_document["password"])
    assert third_document["username"] == blue
    assert await postgres.logs_in(blue, third_document["password"])
    assert await postgres.logs_in(green, document["password"])
    assert not await postgres.logs_in(blue, blue_password)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("malformed", "event field 'subject' is missing"),
        ("inconsistent", "fields disagree with data.Id: topic/source names vault 'kv-elsewhere'"),
        ("unknown_rotator", "unknown rotator 'no-such-rotator'"),
        ("validity_30", "ValidityPeriodDays=30 must be more than 30"),
        ("outside_scope", "outside ROTATION_ALLOWED_SCOPES"),
    ],
)
async def test_bad_input_gets_one_clear_log_line_and_rotates_nothing(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
    case: str,
    reason: str,
) -> None:
    tags = {
        "malformed": {},
        "inconsistent": {},
        "unknown_rotator": {"RotatorType": "no-such-rotator"},
        "validity_30": {"ValidityPeriodDays": "30"},
        "outside_scope": {"ProviderAddress": "postgresql://10.0.0.1:5432/postgres"},
    }[case]
    name, role, version = astuple(await seed_role_secret(vault, postgres, leak_check, "e2e", **tags))
    password = (await vault.get_secret(name)).value or ""
    event = key_vault_event(stack_environ["KEYVAULT_URL"], name, version)
    if case == "malformed":
        event.pop("subject")
    if case == "inconsistent":  # data.Id names this vault, the topic another one
        event["topic"] = event["topic"].rsplit("/", 1)[0] + "/kv-elsewhere"
    caplog.clear()

    await host.deliver_queue_message(json.dumps(event))

    lines = [r for r in caplog.records if r.name == "secret_rotation"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelname == "ERROR" and lines[0].getMessage().startswith("SecretRotationFailed")
    assert reason in lines[0].getMessage()
    assert await _versions(vault, name) == 1
    assert await postgres.logs_in(role, password), "the credential is untouched"
    with pytest.raises(ResourceNotFoundError):
        await vault.get_secret(pending_name(name))


async def test_an_event_too_large_for_the_queue_is_refused_once_and_for_all(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Azure Storage refuses a message over 64 KiB with 413; no retry or replay can shrink it, so intake
    answers Event Grid with success (no ten redeliveries, no dead letter) after one clear line."""
    name, _, version = astuple(await seed_role_secret(vault, postgres, leak_check, "e2e-large"))
    event = key_vault_event(stack_environ["KEYVAULT_URL"], name, version)
    event["data"]["Padding"] = "x" * 70_000
    caplog.clear()

    await host.deliver_event(event)  # returns normally: Event Grid will not redeliver

    lines = [r.getMessage() for r in caplog.records if r.name == "secret_rotation"]
    assert len(lines) == 1 and lines[0].startswith("SecretRotationFailed"), lines
    assert "step=intake" in lines[0] and "event too large to enqueue" in lines[0] and "413" in lines[0]
    assert "retryable" not in lines[0]
    assert await _versions(vault, name) == 1
