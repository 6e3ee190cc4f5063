"""How long the event loop is blocked: a ticker that asks to wake every millisecond and adds up how late
it wakes beyond a 2 ms tolerance (time the loop spent running someone's synchronous code)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

TICK = 0.001
TOLERANCE = 0.002


@dataclass
class LoopBlocking:
    blocked: float = 0.0  # seconds the loop was late in total
    longest: float = 0.0  # the longest single block


@contextlib.asynccontextmanager
async def watch_loop() -> AsyncIterator[LoopBlocking]:
    result = LoopBlocking()

    async def tick() -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            late = time.perf_counter() - start - TICK
            if late > TOLERANCE:
                result.blocked += late
                result.longest = max(result.longest, late)

    task = asyncio.create_task(tick())
    try:
        yield result
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
