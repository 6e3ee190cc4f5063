"""Burst: N secrets due at once, through intake and the worker with the Functions host's concurrency,
against the fault proxy in throttle mode; compared with the throttle-bound rate (limit / CREATEs per
rotation) and with the stack's own ceiling (bare calls doing the same requests, same concurrency, no
throttle). Also the connection pool before/after: peak RSS and connections at C concurrent rotations with
per-client transports (a CA path per client, as before) and with the shared pool.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import throttle_mode
from bench.burst_child import dump
from bench.context import Bench
from bench.report import REPO, Row
from bench.workload import Recipe, Seeded, seed_many
from secret_rotation.outcomes import Status

HOST_JSON = json.loads((REPO / "host.json").read_text())["extensions"]["queues"]
#: What the Functions host runs at once per instance for one queue function.
HOST_CONCURRENCY = int(HOST_JSON["batchSize"]) + int(HOST_JSON["newBatchThreshold"])


def _child(
    mode: str,
    seeded: list[Seeded],
    vault: str,
    bench: Bench,
    concurrency: int,
    *extra: str,
    recipe: Recipe | None = None,
) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".json", dir=REPO / ".local", delete=False) as handle:
        path = handle.name
    try:
        dump(path, seeded, recipe)
        cmd = [
            sys.executable,
            "-m",
            "bench.burst_child",
            mode,
            "--seeded",
            path,
            "--vault",
            vault,
            "--queue",
            bench.queue_name(),
            "--concurrency",
            str(concurrency),
            *extra,
        ]
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"burst child ({mode}) failed: {out.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return result
    finally:
        Path(path).unlink(missing_ok=True)


def _throttled(report: dict[str, Any]) -> int:
    return sum(int(kind["throttled"]) for vault in report["vaults"].values() for kind in vault.values())


async def _double_rotations(bench: Bench, seeded: list[Seeded]) -> tuple[int, int]:
    """(secrets promoted more than once, secrets not promoted): versions carrying a RotationId."""
    doubled = missing = 0
    for secret in seeded:
        promoted = [
            p
            async for p in bench.seeder.list_properties_of_secret_versions(secret.name)
            if (p.tags or {}).get("RotationId")
        ]
        doubled += len(promoted) > 1
        missing += not promoted
    return doubled, missing


async def run(bench: Bench, recipe: Recipe, n: int, pool_concurrency: int) -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    creates = recipe.creates
    seeded = await seed_many(bench.env, bench.seeder, "single", n, "burst")
    unshared = await seed_many(bench.env, bench.seeder, "single", max(1, n // 2), "burst-backoff")
    limit = await throttle_mode.enable(bench)
    share = throttle_mode.WORKER_SHARE
    try:
        ours = _child("engine", seeded, bench.vaults.proxied, bench, HOST_CONCURRENCY, "--creates-per-10s", str(share))
        throttled_by_proxy = _throttled(await throttle_mode.report(bench))
        await throttle_mode.enable(bench)  # fresh windows and counters
        # The default share (all of Key Vault's 300) against the scaled limit: only the back-off on 429 holds.
        backoff = _child("engine", unshared, bench.vaults.proxied, bench, HOST_CONCURRENCY)
        throttled_backoff = _throttled(await throttle_mode.report(bench))
    finally:
        await throttle_mode.disable(bench)
    doubled, missing = await _double_rotations(bench, seeded)
    bare_seeded = await seed_many(bench.env, bench.seeder, "single", n, "bare")
    bare = _child("bare", bare_seeded, bench.vaults.proxied, bench, HOST_CONCURRENCY, recipe=recipe)

    rate = n / ours["elapsed"]
    ceiling = n / bare["elapsed"]
    # A redelivered message for a secret already rotated ends SKIPPED: the protocol working, not a failure.
    failures = ours["outcomes"].get(Status.FAILED.value, 0)
    # The throttle-bound rate: limit / CREATEs per rotation. (A burst also gets the first window's
    # CREATEs at once, which a short burst turns into a rate a little above this.)
    allowed = limit.creates_per_10s
    bound = allowed / 10 / creates
    lower = min(ceiling, bound)
    rows += [
        Row(
            "burst",
            f"{n} secrets due at once: rotations/s",
            f"{rate:.2f}/s",
            "",
            None,
            note=f"host concurrency {HOST_CONCURRENCY} (host.json batchSize + newBatchThreshold); outcomes "
            f"{ours['outcomes']}; Key Vault requests {ours['keyvault_requests']} ({ours['creates']} CREATEs); "
            f"answered 429 by the throttle mode: {throttled_by_proxy}",
        ),
        Row(
            "burst",
            "vs throttle-bound rate (limit / CREATEs per rotation)",
            f"{rate / bound:.0%} of {bound:.2f}/s",
            "",
            None,
            note=f"{limit.description}; {allowed} / 10 s / {creates} CREATEs per rotation; the worker's own limit "
            f"(ROTATION_KEYVAULT_CREATES_PER_10S) is {share}, so its ceiling is {share / allowed:.0%} of this bound",
        ),
        Row(
            "burst",
            "vs stack ceiling (bare calls, same requests)",
            f"{rate / ceiling:.0%} of {ceiling:.2f}/s",
            "",
            None,
        ),
        Row("burst", "rate vs the lower of the two", f"{rate / lower:.0%}", ">= 90 %", rate / lower >= 0.9),
        Row(
            "burst",
            "failures / double rotations / not rotated",
            f"{failures} / {doubled} / {missing}",
            "0 / 0 / 0",
            failures == 0 and doubled == 0 and missing == 0,
        ),
        Row(
            "burst",
            f"{len(unshared)} due at once, worker limit off (back-off on 429 only)",
            f"{len(unshared) / backoff['elapsed']:.2f}/s, {throttled_backoff} answered 429 "
            f"({throttled_backoff / max(1, backoff['keyvault_requests']):.1%} of {backoff['keyvault_requests']})",
            "",
            None,
            note=f"outcomes {backoff['outcomes']}: without its share the worker meets the limit, backs off on "
            "each 429 (the vault paused for the process, its CREATE rate halved) instead of retrying at once",
        ),
        Row(
            "burst",
            "peak RSS of the worker process",
            f"{ours['peak_rss_mb']:.0f} MB",
            "<= 150 MB",
            ours["peak_rss_mb"] <= 150,
        ),
    ]

    for transport in ("per-client", "shared"):
        pool_seeded = await seed_many(bench.env, bench.seeder, "single", pool_concurrency, f"pool{transport[:3]}")
        result = _child("worker", pool_seeded, bench.vaults.direct, bench, pool_concurrency, "--transport", transport)
        rows.append(
            Row(
                "pool",
                f"{pool_concurrency} concurrent rotations, {transport} transport",
                f"{result['peak_rss_mb']:.0f} MB peak RSS, {result['connections']} connections, "
                f"{pool_concurrency / result['elapsed']:.1f} rotations/s",
                "",
                None,
                note=f"outcomes {result['outcomes']}",
            )
        )
    return rows, notes
