"""One worker process of the burst benchmark (run by `bench.burst`, one process per measurement, so its peak
RSS is the worker's own). Reads the seeded secrets from a JSON file, prints one JSON result line.

engine  every secret's event through `intake` (concurrently, as Event Grid pushes), then the queue drained
        into `worker` with the Functions host's concurrency (host.json batchSize + newBatchThreshold)
bare    the same Key Vault requests, logins and queue messages as plain SDK / psycopg calls (the stack's
        ceiling), with the same concurrency
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.exceptions import ResourceExistsError
from azure.core.pipeline.transport import AioHttpTransport

from bench.counting import Request, TransportCounter
from bench.workload import BareRotation, Recipe, Seeded, StackEnv
from secret_rotation.composition import build_service
from secret_rotation.host_storage import queue_client
from secret_rotation.outcomes import Status
from secret_rotation.transport import SharedHttp
from secret_rotation.worker import RetryableFailure
from tests.support.events import key_vault_event


class PerClientHttp(SharedHttp):
    """The transport before the shared pool (for the before/after figure): every client its own session and
    a CA *path* as `connection_verify`, which azure-core turns into a new SSL context per request."""

    def transport(self) -> AioHttpTransport:
        session = aiohttp.ClientSession(
            trace_configs=list(self._trace_configs) or None, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )
        return AioHttpTransport(session=session, session_owner=True, connection_verify=self._ca_bundle)


def _load(path: str) -> tuple[list[Seeded], Recipe | None]:
    data = json.loads(Path(path).read_text())
    seeded = [
        Seeded(
            **{
                **s,
                "roles": tuple(s["roles"]),
                "passwords": tuple(s["passwords"]),
                "admin": tuple(s["admin"]) if s["admin"] else None,
            }
        )
        for s in data["seeded"]
    ]
    recipe = None
    if data.get("recipe"):
        r = data["recipe"]
        template = Seeded(
            **{
                **r["template"],
                "roles": tuple(r["template"]["roles"]),
                "passwords": tuple(r["template"]["passwords"]),
                "admin": None,
            }
        )
        recipe = Recipe(template, tuple(Request(**q) for q in r["keyvault"]), r["pg_logins"])
    return seeded, recipe


async def engine(args: argparse.Namespace, env: StackEnv, seeded: list[Seeded]) -> dict[str, Any]:
    counter = TransportCounter()
    http_class = PerClientHttp if args.transport == "per-client" else SharedHttp
    http = http_class(env.ca, trace_configs=[counter.trace_config()])
    settings = env.settings(args.vault, args.queue, ROTATION_KEYVAULT_CREATES_PER_10S=str(args.creates_per_10s))
    service = build_service(settings, http=http)
    wiring = service.wiring
    assert wiring is not None
    queue = queue_client(settings.storage, wiring.credential, args.queue, transport=http.transport())
    outcomes: Counter[str] = Counter()
    limit = asyncio.Semaphore(args.concurrency)
    start = time.perf_counter()

    async def deliver(secret: Seeded) -> None:
        async with limit:
            await service.intake.accept(key_vault_event(args.vault, secret.name, secret.version))

    if args.mode == "engine":
        await asyncio.gather(*(deliver(s) for s in seeded))
    else:  # worker only: the events go to the worker directly (pool memory under N concurrent rotations)
        with contextlib.suppress(ResourceExistsError):
            await queue.create_queue()
        for secret in seeded:
            await queue.send_message(secret.event(args.vault))

    async def handle(message: Any) -> None:
        try:
            outcome = await service.worker.handle(message.content, message_id=message.id, attempt=message.dequeue_count)
            outcomes[outcome.status.value] += 1
            await queue.delete_message(message)
        except RetryableFailure as exc:
            outcomes[f"retried ({exc.outcome.status.value})"] += 1  # back on the queue after its timeout
        finally:
            limit.release()

    def finished() -> bool:
        return sum(v for k, v in outcomes.items() if not k.startswith("retried")) >= len(seeded)

    tasks: set[asyncio.Task[None]] = set()
    while not finished():
        free = args.concurrency - len(tasks)
        got = 0
        if free > 0:
            async for message in queue.receive_messages(
                messages_per_page=min(32, free), max_messages=min(32, free), visibility_timeout=30
            ):
                await limit.acquire()
                task = asyncio.create_task(handle(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                got += 1
        if tasks:
            await asyncio.wait(tasks, timeout=0.05 if got else 0.2, return_when=asyncio.FIRST_COMPLETED)
        elif not got:
            await asyncio.sleep(0.2)
    elapsed = time.perf_counter() - start
    await queue.close()
    await service.close()
    host = args.vault.split("//", 1)[1]
    kv = counter.to(host)
    return {
        "elapsed": elapsed,
        "outcomes": dict(outcomes),
        "connections": counter.connections["all"],
        "keyvault_requests": len(kv),
        "creates": sum(1 for r in kv if r.is_keyvault_create),
        "throttled": sum(1 for r in kv if r.status == 429),
    }


async def bare(args: argparse.Namespace, env: StackEnv, seeded: list[Seeded], recipe: Recipe) -> dict[str, Any]:
    from azure.identity.aio import ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient

    http = SharedHttp(env.ca)
    credential = ManagedIdentityCredential(client_id=env.values["AZURE_CLIENT_ID"], transport=http.transport())
    client = SecretClient(
        args.vault,
        credential,
        api_version=env.values["KEYVAULT_API_VERSION"],
        verify_challenge_resource=False,
        retry_total=0,
        transport=http.transport(),
    )
    settings = env.settings(args.vault, args.queue)
    queue = queue_client(settings.storage, credential, args.queue, transport=http.transport())
    with contextlib.suppress(ResourceExistsError):
        await queue.create_queue()
    rotation = BareRotation(env, client, recipe)
    limit = asyncio.Semaphore(args.concurrency)
    start = time.perf_counter()

    async def one(secret: Seeded) -> None:
        async with limit:
            await client.get_secret(secret.name)  # intake's read
            await queue.send_message(secret.event(args.vault))
            async for message in queue.receive_messages(max_messages=1, visibility_timeout=30):
                await queue.delete_message(message)
            await rotation.run(secret)

    await asyncio.gather(*(one(s) for s in seeded))
    elapsed = time.perf_counter() - start
    await queue.close()
    await client.close()
    await credential.close()
    await http.close()
    return {"elapsed": elapsed, "outcomes": {Status.ROTATED.value: len(seeded)}}


async def main(args: argparse.Namespace) -> None:
    from secret_rotation.stack_env import load_stack_env

    env = StackEnv(load_stack_env())
    os.environ.update(env.values)
    seeded, recipe = _load(args.seeded)
    if args.mode == "bare":
        assert recipe is not None
        result = await bare(args, env, seeded, recipe)
    else:
        result = await engine(args, env, seeded)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def dump(path: str, seeded: list[Seeded], recipe: Recipe | None = None) -> None:
    with open(path, "w") as out:
        json.dump({"seeded": [asdict(s) for s in seeded], "recipe": asdict(recipe) if recipe else None}, out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("engine", "worker", "bare"))
    parser.add_argument("--seeded", required=True)
    parser.add_argument("--vault", required=True)
    parser.add_argument("--queue", required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--creates-per-10s", type=int, default=300)
    parser.add_argument("--transport", choices=("shared", "per-client"), default="shared")
    asyncio.run(main(parser.parse_args(sys.argv[1:])))
