"""One delivery of a job in a process of its own, killed with `os._exit` at a chosen boundary.

    python -m tests.support.crash_worker CRASH_AT < event.json

Boundaries are the protocol's effects: every Key Vault write (`set`, `update`) and every provider change
(`apply`). CRASH_AT=0 dies before the first effect, CRASH_AT=k right after the k-th one; -1 never dies
and prints how many effects a full run had. Dying this way is a hard stop: no `finally`, no lease
release, no in-memory state survives, as when an instance is recycled mid-rotation.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

CRASH_EXIT_CODE = 86


def closing_updates(effects: list[str]) -> int:
    """How many updates end a full run: one per pending version the rotation closes (two for a rotator
    that `issues_credentials`: the placeholder and the issued version)."""
    count = 0
    for effect in reversed(effects):
        if effect != "KeyVaultSecretStore.update":
            break
        count += 1
    return count


def _install(crash_at: int, effects: list[str]) -> None:
    import importlib

    from secret_rotation.keyvault_store import KeyVaultSecretStore
    from secret_rotation.registry import BUILTIN_ROTATORS

    def boundary() -> None:
        if len(effects) == crash_at:
            sys.stdout.flush()
            os._exit(CRASH_EXIT_CODE)

    def wrap(owner: type, method: str) -> None:
        original: Callable[..., Awaitable[Any]] = getattr(owner, method)

        async def wrapped(self: object, *args: Any, **kwargs: Any) -> Any:
            boundary()
            result = await original(self, *args, **kwargs)
            effects.append(f"{owner.__name__}.{method}")
            boundary()
            return result

        setattr(owner, method, wrapped)

    wrap(KeyVaultSecretStore, "set")
    wrap(KeyVaultSecretStore, "update")
    # Every built-in rotator's provider change is a boundary.
    for path in BUILTIN_ROTATORS.values():
        module, _, name = path.partition(":")
        wrap(getattr(importlib.import_module(module), name), "apply")


async def _run(crash_at: int, body: str) -> dict[str, Any]:
    from secret_rotation.composition import build_service
    from secret_rotation.settings import Settings

    effects: list[str] = []
    _install(crash_at, effects)
    service = build_service(Settings.from_env(os.environ))
    try:
        outcome = await service.worker.handle(body)
    finally:
        await service.close()
    return {"effects": effects, "status": outcome.status.value, "step": outcome.step, "reason": outcome.reason}


def main() -> int:
    crash_at = int(sys.argv[1])
    result = asyncio.run(_run(crash_at, sys.stdin.read()))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
