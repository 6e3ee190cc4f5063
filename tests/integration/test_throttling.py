"""Transient faults through the fault-injecting proxies in front of the Key Vault double and the
identity endpoint: throttling with Retry-After, outages and connection resets are retried within the
budget; a budget overrun hands the message back to the queue; permanent errors are not retried."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import astuple

import pytest
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.composition import Service, build_service
from secret_rotation.outcomes import Status
from secret_rotation.settings import Settings
from secret_rotation.worker import RetryableFailure
from tests.support.events import key_vault_event
from tests.support.faults import Faults
from tests.support.figures import record_figure
from tests.support.stack import Postgres, readable_values, seed_role_secret

pytestmark = pytest.mark.integration

BUDGET_SECONDS = 8.0


@pytest.fixture
async def faulty_service(stack_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Service]:
    """The app reaching Key Vault and its token endpoint only through the fault proxies."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack_environ["IDENTITY_ENDPOINT_FAULTY"])
    environ = {**stack_environ, "ROTATION_RETRY_BUDGET_SECONDS": str(BUDGET_SECONDS)}
    service = build_service(Settings.from_env(environ))
    yield service
    await service.close()


async def test_a_throttling_storm_is_ridden_out_within_the_budget(
    faulty_service: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    kv_faults: Faults,
    identity_faults: Faults,
    leak_check: list[str],
) -> None:
    secrets = [astuple(await seed_role_secret(vault, postgres, leak_check, "storm")) for _ in range(3)]
    await kv_faults.schedule(
        {"match": {"path_regex": "^/secrets/storm-"}, "action": "status", "status": 429, "retry_after": 1, "every": 4},
        {"match": {"path_regex": "^/secrets/storm-"}, "action": "status", "status": 503, "every": 7},
        {"match": {"method": "PATCH"}, "action": "reset", "times": 2},
    )
    await identity_faults.schedule({"match": {}, "action": "status", "status": 503, "times": 1})

    started = time.monotonic()
    completed = deliveries = 0
    for name, role, version in secrets:
        body = key_vault_event(stack_environ["KEYVAULT_URL_FAULTY"], name, version)
        for _ in range(5):  # what the queue would do: redeliver a retryable failure
            deliveries += 1
            try:
                outcome = await faulty_service.worker.handle(json.dumps(body))
            except RetryableFailure:
                continue
            assert outcome.status is Status.ROTATED, outcome
            completed += 1
            break
        newest = await vault.get_secret(name)
        leak_check.append(newest.value or "")
        assert await postgres.logs_in(role, newest.value or "")
    elapsed = time.monotonic() - started
    stats = await kv_faults.stats()
    injected = stats["injected"]

    record_figure("throttling storm: requests answered 429", injected.get("429", 0))
    record_figure("throttling storm: requests answered 503", injected.get("503", 0))
    record_figure("throttling storm: connections reset", injected.get("reset", 0))
    record_figure("throttling storm: rotations completed", f"{completed} of {len(secrets)} in {deliveries} deliveries")
    record_figure(
        "throttling storm: time spent",
        f"{elapsed:.1f} s for {len(secrets)} rotations; per-call budget {BUDGET_SECONDS} s",
    )
    assert completed == len(secrets)
    assert injected.get("429", 0) >= 5 and injected.get("503", 0) >= 2 and injected.get("reset", 0) == 2
    # Every 429 asked for one second and got it: Retry-After is honoured, not raced.
    assert elapsed >= injected["429"] * 1.0


async def test_a_storm_longer_than_the_budget_goes_back_to_the_queue(
    faulty_service: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    kv_faults: Faults,
    leak_check: list[str],
) -> None:
    name, _, version = astuple(await seed_role_secret(vault, postgres, leak_check, "storm"))
    await kv_faults.schedule(
        {"match": {"path_regex": f"^/secrets/{name}/?$"}, "action": "status", "status": 429, "retry_after": 2}
    )
    started = time.monotonic()
    with pytest.raises(RetryableFailure) as failure:
        await faulty_service.worker.handle(
            json.dumps(key_vault_event(stack_environ["KEYVAULT_URL_FAULTY"], name, version))
        )
    elapsed = time.monotonic() - started
    assert failure.value.outcome.retryable and "429" in (failure.value.outcome.reason or "")
    assert elapsed < BUDGET_SECONDS + 2.5, "the budget stops the retries, Retry-After included"
    record_figure("budget overrun: time until handed back to the queue", f"{elapsed:.1f} s (budget {BUDGET_SECONDS} s)")
    assert len(await readable_values(vault, name)) == 1


@pytest.mark.parametrize(("status", "expected"), [(403, "access denied"), (404, "does not exist")])
async def test_permanent_errors_are_not_retried(
    faulty_service: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    kv_faults: Faults,
    leak_check: list[str],
    status: int,
    expected: str,
) -> None:
    name, _, version = astuple(await seed_role_secret(vault, postgres, leak_check, "storm"))
    await kv_faults.schedule(
        {"match": {"method": "GET", "path_regex": f"^/secrets/{name}/?$"}, "action": "status", "status": status}
    )
    await kv_faults.reset_stats()
    outcome = await faulty_service.worker.handle(
        json.dumps(key_vault_event(stack_environ["KEYVAULT_URL_FAULTY"], name, version))
    )
    assert outcome.status is Status.FAILED and not outcome.retryable
    assert expected in (outcome.reason or "")
    stats = await kv_faults.stats()
    assert stats["by_rule"][0]["applied"] == 1, "asked once, never retried"


async def test_conflicts_are_classified_by_code_and_throttling_without_retry_after_backs_off(
    faulty_service: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    kv_faults: Faults,
    leak_check: list[str],
) -> None:
    """Key Vault's 409 `Conflict` is retried (Microsoft: sequence or retry), a deleted-but-recoverable name
    is a configuration error, and a 429 without Retry-After is retried in-process with back-off."""
    name, role, version = astuple(await seed_role_secret(vault, postgres, leak_check, "conflict"))
    pending = f"^/secrets/{name}--rotation-pending/?$"
    await kv_faults.schedule(
        {"match": {"method": "PUT", "path_regex": pending}, "action": "status", "status": 409, "times": 1},
        {
            "match": {"method": "PUT", "path_regex": f"^/secrets/{name}/?$"},
            "action": "status",
            "status": 429,
            "times": 1,
        },
    )
    body = json.dumps(key_vault_event(stack_environ["KEYVAULT_URL_FAULTY"], name, version))

    with pytest.raises(RetryableFailure) as conflict:
        await faulty_service.worker.handle(body)
    assert conflict.value.outcome.step == "create" and "conflict, will retry" in (conflict.value.outcome.reason or "")
    outcome = await faulty_service.worker.handle(body)  # the queue's redelivery

    assert outcome.status is Status.ROTATED, outcome
    assert (await kv_faults.stats())["injected"].get("429") == 1, "the 429 was retried within the run"
    newest = await vault.get_secret(name)
    leak_check.append(newest.value or "")
    assert await postgres.logs_in(role, newest.value or "")

    other, _, other_version = astuple(await seed_role_secret(vault, postgres, leak_check, "deleted"))
    await kv_faults.schedule(
        {
            "match": {"method": "PUT", "path_regex": f"^/secrets/{other}--rotation-pending/?$"},
            "action": "status",
            "status": 409,
            "code": "ObjectIsDeletedButRecoverable",
        }
    )
    deleted = await faulty_service.worker.handle(
        json.dumps(key_vault_event(stack_environ["KEYVAULT_URL_FAULTY"], other, other_version))
    )
    assert deleted.status is Status.FAILED and not deleted.retryable
    assert "deleted but recoverable" in (deleted.reason or "")
