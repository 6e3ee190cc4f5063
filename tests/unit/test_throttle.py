"""The per-vault CREATE limiter and the adaptive back-off on 429 (`secret_rotation.throttle`), on a fake
clock: sleeping advances the clock instead of waiting, so nothing here depends on real time.

Limits from Key Vault's service-limits page ("Secrets, managed storage account keys, and vault
transactions ... per vault per region: Secret CREATE secret 300, all other transactions 4,000" per 10 s)
and its throttling guidance ("returns HTTP status code 429 ... Failed requests that return a 429 do not
count towards the throttle limits"; clients should honour Retry-After and back off exponentially).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from azure.core.pipeline import AsyncPipeline
from azure.core.pipeline.transport import AsyncHttpTransport
from azure.core.rest import HttpRequest

from secret_rotation.settings import Settings
from secret_rotation.throttle import (
    KEYVAULT_SECRET_CREATES_PER_WINDOW,
    Limits,
    VaultGate,
    VaultThrottle,
    is_create,
)

VAULT = "https://vault-a.vault.azure.net"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


def gate(time: FakeTime, creates: int = 5, window: float = 10.0) -> VaultGate:
    return VaultGate(Limits(creates, window), clock=time.clock, sleep=time.sleep)


def most_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


async def test_never_more_creates_than_the_limit_in_any_window() -> None:
    time = FakeTime()
    vault = gate(time, creates=5)
    granted: list[float] = []

    async def create() -> None:
        await vault.acquire(create=True)
        granted.append(time.now)

    await asyncio.gather(*(create() for _ in range(23)))
    assert len(granted) == 23
    assert most_in_any_window(granted, 10.0) == 5
    assert granted[:5] == [0.0] * 5  # no wait while under the limit
    assert max(granted) == 40.0  # 23 creates at 5 per 10 s: the last window opens at 40 s


async def test_a_create_counts_from_its_answer_so_a_slow_request_cannot_crowd_the_next_window() -> None:
    time = FakeTime()
    vault = gate(time, creates=1)
    permit = await vault.acquire(create=True)
    time.now = 3.0  # the answer took 3 s: Key Vault may have admitted it at any point until now
    vault.done(permit)
    await vault.acquire(create=True)
    assert time.now == 13.0


async def test_reads_pass_freely_but_wait_while_the_vault_is_paused() -> None:
    time = FakeTime()
    vault = gate(time, creates=1)
    await vault.acquire(create=True)
    await vault.acquire(create=False)  # the CREATE limit does not hold reads
    assert time.now == 0.0
    vault.throttled(retry_after=3.0)
    await vault.acquire(create=False)
    assert time.now == 3.0


async def test_a_429_halves_the_rate_once_per_window_and_successes_restore_it() -> None:
    time = FakeTime()
    vault = gate(time, creates=8)
    vault.throttled(retry_after=None)
    vault.throttled(retry_after=None)  # same window: answers to requests already in flight
    assert vault.limit == 4
    time.now = 10.0
    vault.throttled(retry_after=None)
    assert vault.limit == 2
    for _ in range(10):
        vault.succeeded()
    assert vault.limit == 8  # additive increase, capped at the configured share


async def test_without_retry_after_the_pause_doubles_per_consecutive_429() -> None:
    time = FakeTime()
    vault = gate(time, creates=100)
    pauses = []
    for _ in range(6):
        vault.throttled(retry_after=None)
        start = time.now
        await vault.acquire(create=False)
        pauses.append(time.now - start)
    assert pauses == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]  # capped at one window
    vault.succeeded()
    vault.throttled(retry_after=None)
    start = time.now
    await vault.acquire(create=False)
    assert time.now - start == 1.0


def test_each_vault_has_its_own_gate_and_the_default_is_the_documented_limit() -> None:
    throttle = VaultThrottle()
    assert throttle.gate(VAULT + "/secrets/a") is throttle.gate(VAULT.upper() + "/secrets/b?api-version=7.6")
    assert throttle.gate(VAULT) is not throttle.gate("https://vault-b.vault.azure.net")
    assert throttle.limits.creates_per_window == KEYVAULT_SECRET_CREATES_PER_WINDOW == 300
    settings = Settings.from_env({"ROTATION_ALLOWED_VAULTS": VAULT, "ROTATION_KEYVAULT_CREATES_PER_10S": "7"})
    assert VaultThrottle.from_settings(settings).limits.creates_per_window == 7


def test_only_set_secret_is_a_create() -> None:
    assert is_create("PUT", f"{VAULT}/secrets/db?api-version=7.6")
    assert not is_create("PATCH", f"{VAULT}/secrets/db/abc?api-version=7.6")
    assert not is_create("GET", f"{VAULT}/secrets/db?api-version=7.6")
    assert not is_create("PUT", f"{VAULT}/secrets/db/backup")


class ScriptedTransport(AsyncHttpTransport):  # type: ignore[type-arg]
    """Answers each request with the next scripted (status, headers); records when each was sent."""

    def __init__(self, time: FakeTime, answers: list[tuple[int, dict[str, str]]]) -> None:
        self._time = time
        self._answers = answers
        self.sent: list[tuple[str, float]] = []

    async def send(self, request: Any, **kwargs: Any) -> Any:
        self.sent.append((request.method, self._time.now))
        status, headers = self._answers.pop(0)
        return SimpleNamespace(status_code=status, headers=headers)  # what the policy reads of a response

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def __aexit__(self, *args: object) -> None: ...


async def test_the_pipeline_policy_pauses_the_vault_for_retry_after_and_counts_creates() -> None:
    time = FakeTime()
    throttle = VaultThrottle(Limits(creates_per_window=2), clock=time.clock, sleep=time.sleep)
    transport = ScriptedTransport(time, [(200, {}), (429, {"Retry-After": "4"}), (200, {}), (200, {}), (200, {})])
    pipeline = AsyncPipeline(transport, policies=[throttle.policy()])
    put = HttpRequest("PUT", f"{VAULT}/secrets/db?api-version=7.6")
    get = HttpRequest("GET", f"{VAULT}/secrets/db?api-version=7.6")
    await pipeline.run(put)
    await pipeline.run(put)  # answered 429 Retry-After: 4 -> the vault pauses, the limit halves to 1
    await pipeline.run(get)  # a read waits out the pause too
    await pipeline.run(put)  # window [0, 10) already holds two CREATEs: waits for the first to leave it
    await pipeline.run(put)
    assert transport.sent == [("PUT", 0.0), ("PUT", 0.0), ("GET", 4.0), ("PUT", 10.0), ("PUT", 10.0)]
