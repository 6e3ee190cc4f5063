"""The bench fault proxy's throttle mode (`tests/doubles/faults_throttle.py`: Key Vault's documented per-vault
limits, scaled down so this machine can exceed them), switched on for the burst and off afterwards."""

from __future__ import annotations

import json
import ssl
import urllib.request
from dataclasses import dataclass
from typing import Any

from bench.context import Bench

#: Key Vault's 300 secret CREATEs (and 4,000 other requests) per 10 s, scaled so that the bound, 75 / 10 / 2
#: = 3.75 rotations/s, lies below the local stack's own ceiling measured with bare calls.
SCALE = 0.25
#: The worker's share, a little under the proxy's 75: like the deployment formula, it leaves headroom for
#: the time between the worker's clock and the proxy's (a request admitted at one window's edge here can
#: arrive a few milliseconds too early there).
WORKER_SHARE = 72


@dataclass(frozen=True)
class Limit:
    creates_per_10s: int
    description: str


def _call(bench: Bench, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 (the bench's own loopback proxy)
        f"{bench.vaults.faults_control}/throttle",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    context = ssl.create_default_context(cafile=bench.env.ca)
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
        result: dict[str, Any] = json.loads(response.read() or b"{}")
        return result


async def enable(bench: Bench) -> Limit:
    # Key Vault's own 429 carries no Retry-After: the worker's back-off must do without one.
    report = _call(bench, "PUT", {"scale": SCALE, "window_seconds": 10, "retry_after": None})
    creates = int(report["limits"]["create"])
    others = int(report["limits"]["other"])
    return Limit(
        creates,
        f"scale {SCALE}: {creates} CREATEs and {others} other requests per vault per 10 s, "
        "429 without Retry-After as Key Vault answers",
    )


async def report(bench: Bench) -> dict[str, Any]:
    return _call(bench, "GET")


async def disable(bench: Bench) -> None:
    _call(bench, "DELETE")
