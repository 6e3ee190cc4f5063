"""The Functions Core Tools path: from the running local stack to `func start`, nothing copied by hand.

    .venv/bin/python scripts/core_tools.py settings [--out local.settings.json]
        writes local.settings.json (git-ignored, mode 0600: it holds the stack's storage key and identity
        header) from .local/stack.env, with every setting the app reads and every binding expression's value;
    .venv/bin/python scripts/core_tools.py send-event SECRET [--vault URL] [--host http://localhost:7071]
        sends a real Key Vault `SecretNearExpiry` event (Event Grid schema, the secret's current version) to
        a running host's Event Grid webhook, as Event Grid would:
        POST /runtime/webhooks/EventGrid?functionName=on_secret_near_expiry, `aeg-event-type: Notification`,
        `Content-Type: application/json`, a JSON array of events (Microsoft Learn, "How to work with Event
        Grid triggers and bindings in Azure Functions", section "Manually post the request").

The Core Tools cannot be installed where this project is built, so `func start` itself was never run here;
tests/integration/test_core_tools.py checks the settings against the app's bindings and settings and the
sender's request against that contract with a local listener.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

EVENT_GRID_FUNCTION = "on_secret_near_expiry"
WEBHOOK_PATH = "/runtime/webhooks/EventGrid"
DEFAULT_HOST = "http://localhost:7071"  # `func start`'s default port
# The Python v2 programming model; the app is indexed from function_app.py by the worker.
HOST_VALUES = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsFeatureFlags": "EnableWorkerIndexing"}
# Read by azure-identity's ManagedIdentityCredential (App Service protocol), not by the app's settings.
IDENTITY_VARIABLES = ("IDENTITY_ENDPOINT", "IDENTITY_HEADER")


def app_setting_names() -> set[str]:
    """Every environment name secret_rotation/settings.py declares (the one module that reads them)."""
    from secret_rotation import settings as app

    return {
        value
        for name, value in vars(app).items()
        if name.isupper() and isinstance(value, str) and not name.startswith("DEFAULT_")
    }


def local_settings(stack: dict[str, str]) -> dict[str, Any]:
    """local.settings.json's document for the stack described by `stack` (its env file's values)."""
    from secret_rotation import settings as app

    # The app's defaults, written out: binding expressions (%ROTATION_QUEUE_NAME%, %ROTATION_SWEEP_SCHEDULE%)
    # need a value before any Python runs, and the others are the knobs a developer may want to turn.
    values = {
        app.QUEUE_NAME: app.DEFAULT_QUEUE_NAME,
        app.SWEEP_SCHEDULE: app.DEFAULT_SWEEP_SCHEDULE,
        app.LOCK_CONTAINER: app.DEFAULT_LOCK_CONTAINER,
        app.STUCK_AFTER_MINUTES: str(app.DEFAULT_STUCK_AFTER_MINUTES),
        app.RETRY_BUDGET_SECONDS: str(app.DEFAULT_RETRY_BUDGET_SECONDS),
        app.KEYVAULT_API_VERSION: app.DEFAULT_KEYVAULT_API_VERSION,
    }
    # Whatever the stack provides of what the app reads, so the host runs with the stack's own settings.
    wanted = app_setting_names() | set(IDENTITY_VARIABLES)
    values.update({name: value for name, value in stack.items() if name in wanted and value})
    return {"IsEncrypted": False, "Values": {**HOST_VALUES, **values}}


def write_local_settings(path: Path, document: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
        handle.write("\n")
    path.chmod(0o600)


async def current_version(stack: dict[str, str], vault_url: str, name: str) -> str:
    """The secret's current version as Key Vault defines it: a versionless read (the listing cannot tell
    versions created in one second apart). Only the version id is kept."""
    from azure.core.exceptions import ResourceNotFoundError

    from tests.support.stack import open_vault

    async with open_vault(stack, vault_url) as vault:
        try:
            return (await vault.get_secret(name)).properties.version or ""
        except ResourceNotFoundError:
            raise SystemExit(f"secret {name} does not exist in {vault_url}") from None


def webhook_request(host: str, event: dict[str, Any], code: str | None = None) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of one Event Grid delivery to the app's Event Grid function."""
    url = f"{host.rstrip('/')}{WEBHOOK_PATH}?functionName={EVENT_GRID_FUNCTION}"
    if code:
        url += f"&code={code}"  # the host's eventgrid_extension system key; `func start` needs none
    headers = {"Content-Type": "application/json", "aeg-event-type": "Notification"}
    return url, headers, json.dumps([event]).encode()


async def send_event(host: str, event: dict[str, Any], code: str | None = None) -> int:
    import aiohttp

    url, headers, body = webhook_request(host, event, code)
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status


async def send_secret_event(
    stack: dict[str, str],
    secret: str,
    *,
    host: str = DEFAULT_HOST,
    vault: str | None = None,
    version: str | None = None,
    code: str | None = None,
) -> int:
    """Sends the secret's SecretNearExpiry event to the host; returns the host's HTTP status."""
    from tests.support.events import key_vault_event

    vault_url = vault or stack["KEYVAULT_URL"]
    event = key_vault_event(vault_url, secret, version or await current_version(stack, vault_url, secret))
    status = await send_event(host, event, code)
    print(f"POST {host}{WEBHOOK_PATH}?functionName={EVENT_GRID_FUNCTION}: HTTP {status} (event {event['id']})")
    return status


def main(argv: list[str] | None = None) -> int:
    from secret_rotation.stack_env import load_stack_env

    parser = argparse.ArgumentParser(description="Functions Core Tools helpers for the local stack")
    commands = parser.add_subparsers(dest="command", required=True)
    settings = commands.add_parser("settings", help="write local.settings.json from the running stack")
    settings.add_argument("--out", type=Path, default=REPO / "local.settings.json")
    send = commands.add_parser("send-event", help="send a SecretNearExpiry event to a running host")
    send.add_argument("secret")
    send.add_argument("--vault", help="vault URL (default: the stack's KEYVAULT_URL)")
    send.add_argument("--version", help="secret version (default: the current one)")
    send.add_argument("--host", default=DEFAULT_HOST, help=f"the host's base URL (default {DEFAULT_HOST})")
    send.add_argument("--code", help="the host's eventgrid_extension system key (a deployed app only)")
    args = parser.parse_args(argv)

    stack = load_stack_env()
    if args.command == "settings":
        write_local_settings(args.out, local_settings(stack))
        print(f"wrote {args.out} from the running stack; now: func start")
        return 0
    status = asyncio.run(
        send_secret_event(stack, args.secret, host=args.host, vault=args.vault, version=args.version, code=args.code)
    )
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main())
