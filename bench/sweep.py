"""The sweep over a vault of N secrets with 1 % due, against a bare `list_properties_of_secrets` over the
same vault. The vault is the bench double's `localhost` authority, which holds nothing else."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from bench.context import Bench
from bench.report import Row, fmt_ratio, ratio
from secret_rotation.composition import Service
from secret_rotation.sweep import ENQUEUE_CONCURRENCY


def sweep_vault(bench: Bench) -> str:
    return f"https://localhost:{urlsplit(bench.vaults.direct).port}"


async def _fill(bench: Bench, vault_url: str, total: int) -> int:
    due = max(1, total // 100)
    now = datetime.now(UTC)
    tags = {
        "RotatorType": "postgres-role",
        "CredentialId": "app",
        "ProviderAddress": bench.env.pg_address,
        "ValidityPeriodDays": "60",
    }
    semaphore = asyncio.Semaphore(32)
    async with bench.bare_client(vault_url) as client:

        async def one(i: int) -> None:
            expires = now + timedelta(days=10 if i < due else 90)
            async with semaphore:
                await client.set_secret(f"sweep-{i:05d}", "not-a-credential", tags=tags, expires_on=expires)

        await asyncio.gather(*(one(i) for i in range(total)))
    return due


async def _enqueue_alone(service: Service, count: int) -> float:
    """The same number of enqueues as the sweep makes, with the sweep's bound, and nothing else."""
    assert service.wiring is not None
    queue = service.wiring.queue
    limit = asyncio.Semaphore(ENQUEUE_CONCURRENCY)

    async def one() -> None:
        async with limit:
            await queue.enqueue(json.dumps({"bench": "enqueue"}))

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    return time.perf_counter() - start


async def run(bench: Bench, total: int, repeats: int) -> list[Row]:
    vault_url = sweep_vault(bench)
    due = await _fill(bench, vault_url, total)
    swept: list[float] = []
    listed: list[float] = []
    read: list[float] = []
    async with bench.service(vault_url) as service, bench.bare_client(vault_url) as client:
        report = await service.sweep.run()  # warm: clients, token, queue
        if len(report.enqueued) != due:
            raise RuntimeError(f"sweep found {len(report.enqueued)} due secrets, expected {due}")
        async for _ in client.list_properties_of_secrets():
            pass
        for i in range(repeats):
            for side in ("sweep", "list", "read") if i % 2 == 0 else ("read", "list", "sweep"):
                start = time.perf_counter()
                if side == "sweep":
                    await service.sweep.run()
                    swept.append(time.perf_counter() - start)
                elif side == "list":
                    async for _ in client.list_properties_of_secrets():
                        pass
                    listed.append(time.perf_counter() - start)
                else:  # the listing plus reading what any sweep must read of each secret
                    async for props in client.list_properties_of_secrets():
                        _ = (props.name, props.tags, props.enabled, props.expires_on, props.updated_on)
                    read.append(time.perf_counter() - start)
        enqueue = await _enqueue_alone(service, due)
    result = ratio(swept, listed)
    with_reads = ratio(swept, read)
    return [
        Row(
            "sweep",
            f"sweep of {total} secrets ({due} due) vs bare list_properties_of_secrets",
            fmt_ratio(result),
            "<= 1.1",
            result[0] <= 1.1,
            note=f"median {sorted(swept)[len(swept) // 2]:.2f} s vs {sorted(listed)[len(listed) // 2]:.2f} s; "
            f"the sweep also enqueues its {due} jobs, which alone take {enqueue:.2f} s on Azurite here (while "
            "listing, overlapped with it)",
        ),
        Row(
            "sweep",
            "the same sweep vs a bare listing that reads name, tags, enabled, expiry, update time",
            fmt_ratio(with_reads),
            "",
            None,
            note=f"median {statistics.median(read):.2f} s: the SDK deserializes a property on each access; the sweep "
            "reads the listing's JSON pages itself (`send_request`), without the SDK's models",
        ),
    ]
