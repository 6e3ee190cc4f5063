"""Requests per rotation, per pattern, counted at the transport, against the documented minimum; and the
time of one rotation through the worker against the bare SDK / psycopg calls doing the same requests."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from bench.context import Bench
from bench.counting import TransportCounter, pg_sessions
from bench.report import Row, fmt_ratio, ratio
from bench.workload import PATTERNS, BareRotation, Recipe, seed
from secret_rotation.outcomes import Status

#: docs/protocol.md, "Requests per rotation": Key Vault requests, CREATEs and PostgreSQL logins that the
#: protocol needs for one rotation that nothing interrupts.
DOCUMENTED_MINIMUM: dict[str, tuple[int, int, int]] = {"single": (9, 2, 3), "dual": (10, 2, 3)}


async def record(bench: Bench, pattern: str) -> tuple[Recipe, int]:
    """One counted rotation (after a warm-up one that builds the clients): its recipe and new connections."""
    counter = TransportCounter()
    host = urlsplit(bench.vaults.direct).netloc
    async with bench.service(bench.vaults.direct, counter) as service:
        warm = await seed(bench.env, bench.seeder, pattern)
        await service.worker.handle(warm.event(bench.vaults.direct))
        target = await seed(bench.env, bench.seeder, pattern)
        before = await pg_sessions(bench.env.admin_dsn)
        counter.reset()
        outcome = await service.worker.handle(target.event(bench.vaults.direct))
        connections = counter.connections["all"]
        logins = await pg_sessions(bench.env.admin_dsn) - before - 1
        if outcome.status is not Status.ROTATED:
            raise RuntimeError(f"bench rotation ({pattern}) ended {outcome.status.value}: {outcome.reason}")
        return Recipe(target, tuple(counter.to(host)), logins), connections


async def run(bench: Bench, repeats: int) -> tuple[list[Row], dict[str, Recipe]]:
    rows: list[Row] = []
    recipes: dict[str, Recipe] = {}
    for pattern in PATTERNS:
        recipe, connections = await record(bench, pattern)
        recipes[pattern] = recipe
        minimum = DOCUMENTED_MINIMUM[pattern]
        kinds = " ".join(
            f"{r.method} {'/'.join(p[:1] + ['..'] * (len(p) - 1))}"
            for r in recipe.keyvault
            for p in [r.path.strip("/").split("/")]
        )
        rows += [
            Row(
                f"requests ({pattern})",
                "Key Vault requests per rotation",
                str(len(recipe.keyvault)),
                f"= {minimum[0]} (docs/protocol.md)",
                len(recipe.keyvault) <= minimum[0],
                note=kinds,
            ),
            Row(
                f"requests ({pattern})",
                "Key Vault CREATEs per rotation",
                str(recipe.creates),
                f"= {minimum[1]}",
                recipe.creates <= minimum[1],
            ),
            Row(
                f"requests ({pattern})",
                "PostgreSQL logins per rotation",
                str(recipe.pg_logins),
                f"= {minimum[2]}",
                recipe.pg_logins <= minimum[2],
            ),
            Row(
                f"requests ({pattern})",
                "new connections per rotation (warm pool)",
                str(connections),
                "0",
                connections == 0,
            ),
        ]
        engine_times, bare_times = await _timed(bench, recipe, repeats)
        rows.append(
            Row(
                f"requests ({pattern})",
                "time per rotation vs bare calls",
                fmt_ratio(ratio(engine_times, bare_times)),
                "",
                None,
                note=f"{repeats} alternating pairs; bare: same Key Vault requests as SDK calls, "
                f"same logins and ALTER ROLE with psycopg",
            )
        )
    return rows, recipes


async def _timed(bench: Bench, recipe: Recipe, repeats: int) -> tuple[list[float], list[float]]:
    pattern = recipe.template.pattern
    engine_times: list[float] = []
    bare_times: list[float] = []
    async with bench.service(bench.vaults.direct) as service, bench.bare_client(bench.vaults.direct) as client:
        bare = BareRotation(bench.env, client, recipe)
        await service.worker.handle((await seed(bench.env, bench.seeder, pattern)).event(bench.vaults.direct))
        await bare.run(await seed(bench.env, bench.seeder, pattern))  # both warm
        for i in range(repeats):
            for side in ("engine", "bare") if i % 2 == 0 else ("bare", "engine"):
                target = await seed(bench.env, bench.seeder, pattern)
                start = time.perf_counter()
                if side == "engine":
                    outcome = await service.worker.handle(target.event(bench.vaults.direct))
                    engine_times.append(time.perf_counter() - start)
                    if outcome.status is not Status.ROTATED:
                        raise RuntimeError(f"bench rotation ended {outcome.status.value}: {outcome.reason}")
                else:
                    await bare.run(target)
                    bare_times.append(time.perf_counter() - start)
    return engine_times, bare_times
