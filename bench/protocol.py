"""Requests per rotation, per pattern, counted at the transport, against the documented minimum; and the
time of one rotation through the worker against the bare SDK / psycopg calls doing the same requests."""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg

from bench.context import Bench
from bench.counting import TransportCounter, pg_sessions
from bench.report import REPO, Row, fmt_ratio, ratio
from bench.workload import PATTERNS, BareRotation, Recipe, seed
from secret_rotation.outcomes import Status

PROTOCOL_DOC = REPO / "docs" / "protocol.md"


def documented_minimum() -> dict[str, tuple[int, int, int]]:
    """docs/protocol.md, "Key Vault requests per rotation": per pattern (requests, CREATEs, provider logins)
    for one rotation that nothing interrupts, read from its table so the bench and the doc cannot drift."""
    text = PROTOCOL_DOC.read_text()
    section = text.split("## Key Vault requests per rotation", 1)[1].split("\n## ", 1)[0]
    header: list[str] = []
    found: dict[str, tuple[int, int]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == "pattern":
            header = cells
        elif header and cells[0] in PATTERNS:
            row = dict(zip(header, cells, strict=False))
            found[cells[0]] = (int(row["total"]), int(row["set (CREATE)"]))
    logins = re.search(r"Provider logins per rotation: (\d+)", section)
    if set(found) != set(PATTERNS) or logins is None:
        raise RuntimeError(f"{PROTOCOL_DOC} has no request table for {PATTERNS} or no provider-login count")
    return {pattern: (*found[pattern], int(logins.group(1))) for pattern in PATTERNS}


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
        container = f"/{bench.env.settings(bench.vaults.direct, 'unused').lock_container}/"
        lock = tuple(r for r in counter.requests if container in r.path)
        return Recipe(target, tuple(counter.to(host)), logins, lock), connections


async def run(bench: Bench, repeats: int) -> tuple[list[Row], dict[str, Recipe]]:
    rows: list[Row] = []
    recipes: dict[str, Recipe] = {}
    for pattern in PATTERNS:
        recipe, connections = await record(bench, pattern)
        recipes[pattern] = recipe
        minimum = documented_minimum()[pattern]
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
        timings = await _timed(bench, recipe, repeats)
        cpu = statistics.median(timings.cpu) * 1000
        loop_cpu = statistics.median(timings.loop_cpu) * 1000
        bare_cpu = statistics.median(timings.bare_loop_cpu) * 1000
        rows.append(
            Row(
                f"requests ({pattern})",
                "worker CPU per rotation: all threads / event-loop thread (bare: loop thread)",
                f"{cpu:.0f} ms / {loop_cpu:.0f} ms (bare {bare_cpu:.0f} ms)",
                "",
                None,
                note="medians of process and thread CPU time: what the loop runs synchronously is the second figure "
                "(SDK work, the engine, and libpq's SCRAM proof at each login; the verifier for ALTER ROLE runs in a "
                "thread)",
            )
        )
        rows.append(
            Row(
                f"requests ({pattern})",
                "time per rotation vs bare calls",
                fmt_ratio(ratio(timings.engine, timings.bare)),
                "",
                None,
                note=f"{repeats} alternating pairs; bare: same Key Vault requests as SDK calls, "
                f"same logins and ALTER ROLE with psycopg",
            )
        )
    rows += await _libpq(bench)
    return rows, recipes


async def _libpq(bench: Bench, samples: int = 20) -> list[Row]:
    """libpq's share: the SCRAM verifier for ALTER ROLE and one login, in event-loop-thread CPU time."""
    values = bench.env.values
    async with await psycopg.AsyncConnection.connect(bench.env.admin_dsn, autocommit=True) as conn:
        start = time.thread_time()
        for _ in range(samples):
            conn.pgconn.encrypt_password(b"x" * 32, b"role", b"scram-sha-256")
        verifier = (time.thread_time() - start) / samples * 1000
    role = await seed(bench.env, bench.seeder, "single", prefix="libpq")
    start = time.thread_time()
    for _ in range(samples):
        login = await psycopg.AsyncConnection.connect(
            host=values["PGHOST"],
            port=values["PGPORT"],
            dbname="postgres",
            user=role.roles[0],
            password=role.passwords[0],
        )
        await login.close()
    login_ms = (time.thread_time() - start) / samples * 1000
    return [
        Row(
            "event loop",
            "libpq per rotation: SCRAM verifier (in a thread) / 3 logins (on the loop)",
            f"{verifier:.1f} ms / {3 * login_ms:.1f} ms",
            "",
            None,
            note=f"{samples} samples each; a login's loop-thread CPU includes psycopg's own connect work",
        )
    ]


@dataclass
class Timings:
    engine: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # process CPU per engine rotation, all threads
    loop_cpu: list[float] = field(default_factory=list)  # of which on the event loop's thread
    bare_loop_cpu: list[float] = field(default_factory=list)  # the bare twin's, on the loop's thread


async def _timed(bench: Bench, recipe: Recipe, repeats: int) -> Timings:
    pattern = recipe.template.pattern
    timings = Timings()
    async with (
        bench.service(bench.vaults.direct) as service,
        bench.bare_client(bench.vaults.direct) as client,
        bench.bare_locks() as locks,
    ):
        bare = BareRotation(bench.env, client, recipe, locks)
        await service.worker.handle((await seed(bench.env, bench.seeder, pattern)).event(bench.vaults.direct))
        await bare.run(await seed(bench.env, bench.seeder, pattern))  # both warm
        for i in range(repeats):
            for side in ("engine", "bare") if i % 2 == 0 else ("bare", "engine"):
                target = await seed(bench.env, bench.seeder, pattern)
                start, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
                if side == "engine":
                    outcome = await service.worker.handle(target.event(bench.vaults.direct))
                    timings.engine.append(time.perf_counter() - start)
                    timings.cpu.append(time.process_time() - cpu)
                    timings.loop_cpu.append(time.thread_time() - loop_cpu)
                    if outcome.status is not Status.ROTATED:
                        raise RuntimeError(f"bench rotation ended {outcome.status.value}: {outcome.reason}")
                else:
                    await bare.run(target)
                    timings.bare.append(time.perf_counter() - start)
                    timings.bare_loop_cpu.append(time.thread_time() - loop_cpu)
    return timings
