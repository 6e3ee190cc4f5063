"""The bench fault proxy's throttle mode (Key Vault's documented per-vault limits, scaled down so this
machine can exceed them), switched on for the burst and off afterwards."""

from __future__ import annotations

from dataclasses import dataclass

from bench.context import Bench


@dataclass(frozen=True)
class Limit:
    creates_per_10s: int
    description: str


async def enable(bench: Bench) -> Limit | None:
    """None when the proxy on this branch has no throttle mode."""
    return None


async def disable(bench: Bench) -> None:
    return None
