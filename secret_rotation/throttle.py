"""Throttle-aware Key Vault access inside one worker process: a per-vault limit on secret CREATEs and an
adaptive back-off when Key Vault answers 429, so a burst of due secrets queues here instead of turning
into a storm of throttled requests and retries.

Where it sits: `composition` adds `VaultThrottle.policy()` to every Key Vault client through azure-core's
documented `per_retry_policies` option, so it sees each HTTP attempt (the engine's tenacity retries
included) and nothing above the adapter knows about it.

Key Vault's documented limits (service-limits page, "Secrets, managed storage account keys, and vault
transactions", per vault per region): 300 secret CREATE operations and 4,000 other transactions per
10 seconds; over them it answers 429 with Retry-After, and 429s do not count. A rotation makes at most
two CREATEs and well under 27 other requests, so the CREATE limit binds first and is the one enforced
here. `ROTATION_KEYVAULT_CREATES_PER_10S` is this process's share of it: the deployment guide derives it
from `maximumInstanceCount` (every instance and worker process has its own limiter).

Adaptive back-off (AIMD): a 429 halves this vault's permitted CREATE rate (at most once per window)
and holds every request to the vault until Retry-After (or 1, 2, 4 ... s without one) has passed; each
successful CREATE gives back one permit. Waiters pass the gate in arrival order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from azure.core.pipeline.policies import AsyncHTTPPolicy, AsyncRetryPolicy

if TYPE_CHECKING:
    from azure.core.pipeline import PipelineRequest, PipelineResponse

    from .settings import Settings

#: Documented per vault per region: secret CREATE operations per window, and the window.
KEYVAULT_SECRET_CREATES_PER_WINDOW = 300
KEYVAULT_WINDOW_SECONDS = 10.0
_MAX_BACKOFF_SECONDS = KEYVAULT_WINDOW_SECONDS
_RETRY_AFTER = AsyncRetryPolicy(retry_total=0)  # only for its public Retry-After header parser


@dataclass(frozen=True)
class Limits:
    creates_per_window: int = KEYVAULT_SECRET_CREATES_PER_WINDOW
    window_seconds: float = KEYVAULT_WINDOW_SECONDS


class Permit:
    """One CREATE's place in the window. It counts from when it is granted and, once the answer is back,
    from then: Key Vault admitted the request somewhere in between, and a request slowed down on its way
    (a busy event loop, the network) must not let the next window's CREATEs reach Key Vault too early."""

    __slots__ = ("at",)

    def __init__(self, at: float) -> None:
        self.at = at


class VaultGate:
    """One vault's gate: at most `limit` CREATEs in any sliding `window` (Key Vault counts per 10 s
    window; a sliding one never exceeds it whatever the alignment), and a pause after a 429."""

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limits = limits
        self._limit = float(limits.creates_per_window)
        self._clock = clock
        self._sleep = sleep
        self._granted: list[Permit] = []
        self._paused_until = 0.0
        self._consecutive_429 = 0
        self._last_decrease: float | None = None
        self._queue = asyncio.Lock()  # FIFO: asyncio.Lock wakes its waiters in order

    @property
    def limit(self) -> int:
        """CREATEs currently permitted per window (lowered by 429s, raised back by successes)."""
        return int(self._limit)

    def _delay(self, create: bool) -> float:
        now = self._clock()
        window = self._limits.window_seconds
        self._granted = [p for p in self._granted if p.at > now - window]
        if now < self._paused_until:
            return self._paused_until - now
        if not create:
            return 0.0
        excess = len(self._granted) - self.limit
        if excess < 0:
            return 0.0
        # When enough earlier permits have left the window (at most a few hundred: sorting is cheap).
        return sorted(p.at for p in self._granted)[excess] + window - now

    async def acquire(self, *, create: bool) -> Permit | None:
        """Wait for this vault's gate; a CREATE also takes a permit of the window (pass it to `done`)."""
        if not create and self._delay(create=False) <= 0:
            return None  # reads pass freely unless the vault is paused
        async with self._queue:
            while (delay := self._delay(create)) > 0:
                await self._sleep(delay)
            if not create:
                return None
            permit = Permit(self._clock())
            self._granted.append(permit)
            return permit

    def done(self, permit: Permit | None) -> None:
        """The answer to a CREATE is back: its permit counts from now."""
        if permit is not None:
            permit.at = self._clock()

    def throttled(self, retry_after: float | None) -> None:
        """Key Vault answered 429: halve the rate (once per window: the other 429s of that window are
        answers to requests already in flight) and pause the vault."""
        now = self._clock()
        self._consecutive_429 += 1
        if self._last_decrease is None or now - self._last_decrease >= self._limits.window_seconds:
            self._limit = max(1.0, self._limit / 2)
            self._last_decrease = now
        backoff = min(_MAX_BACKOFF_SECONDS, 2.0 ** (self._consecutive_429 - 1))
        pause = retry_after if retry_after is not None else backoff
        self._paused_until = max(self._paused_until, now + pause)

    def succeeded(self) -> None:
        self._consecutive_429 = 0
        self._limit = min(float(self._limits.creates_per_window), self._limit + 1)


class VaultThrottle:
    """The gates of every vault this process talks to, keyed by the vault's host (one limit per vault)."""

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = limits or Limits()
        self._clock = clock
        self._sleep = sleep
        self._gates: dict[str, VaultGate] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> VaultThrottle:
        return cls(Limits(creates_per_window=settings.keyvault_creates_per_10s))

    def gate(self, url: str) -> VaultGate:
        key = urlsplit(url).netloc.lower()
        if key not in self._gates:
            self._gates[key] = VaultGate(self.limits, clock=self._clock, sleep=self._sleep)
        return self._gates[key]

    def policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(self)


def is_create(method: str, url: str) -> bool:
    """`PUT /secrets/{name}` (Set Secret) is Key Vault's secret CREATE: a new version."""
    parts = urlsplit(url).path.strip("/").split("/")
    return method.upper() == "PUT" and len(parts) == 2 and parts[0] == "secrets"


class ThrottlePolicy(AsyncHTTPPolicy[Any, Any]):
    """azure-core pipeline policy: pass the vault's gate before each attempt, report 429s and successes."""

    def __init__(self, throttle: VaultThrottle) -> None:
        super().__init__()
        self._throttle = throttle

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        http_request = request.http_request
        create = is_create(http_request.method, http_request.url)
        gate = self._throttle.gate(http_request.url)
        permit = await gate.acquire(create=create)
        try:
            response = await self.next.send(request)
        finally:
            gate.done(permit)
        status = response.http_response.status_code
        if status == 429:
            gate.throttled(_RETRY_AFTER.get_retry_after(response))
        elif create and status < 400:
            gate.succeeded()
        return response
