"""Transient faults through the fault-injecting proxies in front of the Key Vault double and the
identity endpoint: throttling with Retry-After, outages and connection resets are retried within the
budget; a budget overrun hands the message back to the queue; permanent errors are not retried.

Waits are observed through `RetryPolicy`'s injectable sleep (its constructor's `sleep`), not the clock:
the tests assert what the policy asked to wait and how often, and only the printed figures report time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import astuple
from typing import Any

import pytest
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.composition import Service, build_service
from secret_rotation.outcomes import Status
from secret_rotation.retries import RetryPolicy
from secret_rotation.settings import Settings
from secret_rotation.worker import RetryableFailure
from tests.support.events import key_vault_event
from tests.support.faults import Faults
from tests.support.figures import record_figure
from tests.support.stack import Postgres, readable_values, seed_role_secret

pytestmark = pytest.mark.integration

BUDGET_SECONDS = 8.0
ATTEMPTS = 6  # RetryPolicy's default


class RecordingSleep:
    """The retry policy's sleep: records every wait the policy asks for; `waits` says whether it also
    waits (the time budget runs on the real clock, so the budget test needs real waits)."""

    def __init__(self) -> None:
        self.requested: list[float] = []
        self.waits = False

    async def __call__(self, seconds: float) -> None:
        self.requested.append(seconds)
        if self.waits:
            await asyncio.sleep(seconds)


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> RecordingSleep:
    """Every `RetryPolicy` the composition root builds gets the recording sleep through its constructor."""
    import secret_rotation.composition
    import secret_rotation.retries

    sleep = RecordingSleep()

    class RecordingPolicy(RetryPolicy):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options, sleep=sleep)

    # Whether the root names the class at import or imports it on first use, it gets this one.
    monkeypatch.setattr(secret_rotation.composition, "RetryPolicy", RecordingPolicy, raising=False)
    monkeypatch.setattr(secret_rotation.retries, "RetryPolicy", RecordingPolicy)
    return sleep


@pytest.fixture
async def faulty_service(
    stack_environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, retry_sleeps: RecordingSleep
) -> AsyncIterator[Service]:
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
    retry_sleeps: RecordingSleep,
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
        f"{elapsed:.1f} s for {len(secrets)} rotations, retry waits recorded, not slept; "
        f"per-call budget {BUDGET_SECONDS} s",
    )
    record_figure(
        "throttling storm: in-process retries",
        f"{len(retry_sleeps.requested)}, asking for {sum(retry_sleeps.requested):.1f} s of waits in all",
    )
    assert completed == len(secrets)
    assert injected.get("429", 0) >= 5 and injected.get("503", 0) >= 2 and injected.get("reset", 0) == 2
    # Every 429 asked for one second and the policy waited exactly that before its retry: Retry-After is
    # honoured, not raced and not replaced by the back-off (whose jitter never gives exactly 1.0).
    assert retry_sleeps.requested.count(1.0) == injected["429"], retry_sleeps.requested
    # The 503s and resets were retried in-process too, each after a back-off wait.
    assert len(retry_sleeps.requested) >= injected["429"] + injected["503"], retry_sleeps.requested


async def test_a_storm_longer_than_the_budget_goes_back_to_the_queue(
    faulty_service: Service,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    kv_faults: Faults,
    leak_check: list[str],
    retry_sleeps: RecordingSleep,
) -> None:
    name, _, version = astuple(await seed_role_secret(vault, postgres, leak_check, "storm"))
    await kv_faults.schedule(
        {"match": {"path_regex": f"^/secrets/{name}/?$"}, "action": "status", "status": 429, "retry_after": 2}
    )
    retry_sleeps.waits = True  # the budget is measured on the real clock
    started = time.monotonic()
    with pytest.raises(RetryableFailure) as failure:
        await faulty_service.worker.handle(
            json.dumps(key_vault_event(stack_environ["KEYVAULT_URL_FAULTY"], name, version))
        )
    elapsed = time.monotonic() - started
    record_figure("budget overrun: time until handed back to the queue", f"{elapsed:.1f} s (budget {BUDGET_SECONDS} s)")
    assert failure.value.outcome.retryable and "429" in (failure.value.outcome.reason or "")
    waits = retry_sleeps.requested
    # Each retry waited the Retry-After, and the budget, not the attempt count, ended them: the waits
    # stay within it, there were fewer than the attempts allow (5 waits of 2 s would overrun it), and
    # nothing was asked after the last refusal.
    assert waits and set(waits) == {2.0}, waits
    assert sum(waits) <= BUDGET_SECONDS and len(waits) < ATTEMPTS - 1, waits
    assert (await kv_faults.stats())["injected"]["429"] == len(waits) + 1
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
