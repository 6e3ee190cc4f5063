"""The bench fault proxy's throttle mode (Key Vault's documented per-vault limits, scaled down so this
machine can exceed them), switched on for the burst and off afterwards."""

from __future__ import annotations

from dataclasses import dataclass

from bench.context import Bench

#: Key Vault's 300 secret CREATEs per 10 s scaled down so this machine's stack can exceed it: at 2
#: CREATEs per rotation the bound is 4 rotations/s, below the local ceiling measured with bare calls.
SCALED_CREATES_PER_10S = 80


@dataclass(frozen=True)
class Limit:
    creates_per_10s: int
    description: str


async def enable(bench: Bench, creates_per_10s: int = SCALED_CREATES_PER_10S) -> Limit | None:
    """Switches the proxy's throttle mode on; None when the proxy on this branch has none."""
    return None


async def disable(bench: Bench) -> None:
    return None
