"""Throttle mode of the fault proxy: Key Vault's documented per-vault service limits, scaled down.

Microsoft Learn, "Azure Key Vault service limits" (ms.date 07/23/2025), secrets transactions, "maximum
transactions allowed in 10 seconds, per vault per region": CREATE secret 300 (collectively with IMPORT
certificate and IMPORT key), all other transactions 4,000. "When a service threshold is exceeded, Key
Vault limits any further requests from that client, returns HTTP status code 429 (Too many requests),
and the request fails. Failed requests that return a 429 do not count towards the throttle limits"
(Azure Key Vault throttling guidance). A recorded Key Vault 429 has no Retry-After header and the body
`{"error":{"code":"Throttled","message":"Request was not processed because too many requests were
received. Reason: VaultRequestTypeLimitReached"}}`; that is what this mode answers.

`scale` multiplies both limits (and `window_seconds` can shorten the window) so a benchmark on this
machine can reach them: the admitted rate is limit x scale / window. Vaults are told apart by the
authority the client used, as Key Vault counts per vault. The window slides: a request is admitted when
fewer than `limit` admitted requests of its kind fall in the last `window_seconds`.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.doubles.faults_rules import ERROR_MESSAGES, RuleError

WINDOW_SECONDS = 10.0
LIMITS = {"create": 300, "other": 4000}
# CREATE secret is SetSecret (PUT /secrets/{name}); everything else on the data plane is "other".
CREATE = re.compile(r"^/secrets/[^/]+/?$")
DATA_PLANE = re.compile(r"^/(secrets|deletedsecrets|keys|deletedkeys|certificates|deletedcertificates)(/|$)")
THROTTLED_MESSAGE = ERROR_MESSAGES[429]


def kind_of(method: str, path: str) -> str | None:
    """ "create", "other", or None for requests Key Vault would not count (the double's management API)."""
    if not DATA_PLANE.match(path):
        return None
    return "create" if method.upper() == "PUT" and CREATE.match(path) else "other"


@dataclass
class Bucket:
    """The admitted requests of one kind in one vault's sliding window, and the counters."""

    limit: int
    times: deque[float] = field(default_factory=deque)
    admitted: int = 0
    throttled: int = 0

    def _expire(self, now: float, window: float) -> None:
        while self.times and self.times[0] <= now - window:
            self.times.popleft()

    def admit(self, now: float, window: float) -> bool:
        self._expire(now, window)
        if len(self.times) >= self.limit:
            self.throttled += 1  # a 429 does not count towards the limit
            return False
        self.times.append(now)
        self.admitted += 1
        return True

    def free_in(self, now: float, window: float) -> float:
        """Seconds until the oldest admitted request leaves the window."""
        self._expire(now, window)
        return max(self.times[0] + window - now, 0.0) if self.times else 0.0

    def report(self, now: float, window: float) -> dict[str, int]:
        self._expire(now, window)
        return {
            "limit": self.limit,
            "admitted": self.admitted,
            "throttled": self.throttled,
            "in_window": len(self.times),
        }


@dataclass
class Throttle:
    """The throttle mode's settings and per-vault buckets."""

    scale: float
    window: float = WINDOW_SECONDS
    retry_after: float | str | None = None
    vaults: dict[str, dict[str, Bucket]] = field(default_factory=dict)

    @classmethod
    def parse(cls, body: Any) -> Throttle:
        """`{"scale": S, "window_seconds": W (default 10), "retry_after": null | seconds | "auto"}`."""
        keys = {"scale", "window_seconds", "retry_after"}
        if not isinstance(body, dict) or not set(body) <= keys or "scale" not in body:
            raise RuleError('the body must be {"scale": S, "window_seconds": W, "retry_after": R} (scale required)')
        scale, window = body["scale"], body.get("window_seconds", WINDOW_SECONDS)
        for key, value in (("scale", scale), ("window_seconds", window)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
                raise RuleError(f"{key} must be a number in (0, 1000]")
        retry_after = body.get("retry_after")
        valid = retry_after is None or retry_after == "auto"
        valid = valid or (
            isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after >= 0
        )
        if not valid:
            raise RuleError('retry_after must be null (Key Vault sends none), a number of seconds, or "auto"')
        return cls(scale=float(scale), window=float(window), retry_after=retry_after)

    @property
    def limits(self) -> dict[str, int]:
        return {kind: max(1, round(limit * self.scale)) for kind, limit in LIMITS.items()}

    def _bucket(self, vault: str, kind: str) -> Bucket:
        buckets = self.vaults.setdefault(vault.lower(), {})
        return buckets.setdefault(kind, Bucket(self.limits[kind]))

    def admit(self, vault: str, method: str, path: str, now: float) -> dict[str, str] | None:
        """None when the request may pass; else the headers of the 429 to answer with."""
        kind = kind_of(method, path)
        if kind is None:
            return None
        bucket = self._bucket(vault, kind)
        if bucket.admit(now, self.window):
            return None
        if self.retry_after is None:
            return {}
        seconds = bucket.free_in(now, self.window) if self.retry_after == "auto" else float(self.retry_after)
        return {"Retry-After": str(math.ceil(seconds))}

    def throttled(self) -> int:
        return sum(b.throttled for buckets in self.vaults.values() for b in buckets.values())

    def report(self, now: float) -> dict[str, Any]:
        vaults = {
            vault: {kind: bucket.report(now, self.window) for kind, bucket in buckets.items()}
            for vault, buckets in sorted(self.vaults.items())
        }
        config = {"scale": self.scale, "window_seconds": self.window, "retry_after": self.retry_after}
        return {"enabled": True, "config": config, "limits": self.limits, "vaults": vaults}
