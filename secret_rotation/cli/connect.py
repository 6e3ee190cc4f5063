"""Where the CLI's settings and credential come from: the local stack's env file, or real Azure.

- Local stack: `--stack` (or `ROTATION_STACK_ENV` set) reads `.local/stack.env` (or the file that variable
  names) with `secret_rotation.stack_env` into this process's environment (variables already set win), so
  the settings and the stack's managed-identity endpoint are the app's own.
- Azure: the process environment carries the Function App's settings (`ROTATION_ALLOWED_VAULTS`,
  `ROTATION_ALLOWED_SCOPES`, `AzureWebJobsStorage__blobServiceUri`, ...; docs/cli.md shows how to export
  them), and `DefaultAzureCredential` signs in as the operator (Azure CLI, azd, environment, ...).

Both use the service's own wiring (`composition.Wiring`) with the operator's credential, so the CLI runs
the same engine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from secret_rotation.composition import Wiring
from secret_rotation.errors import ConfigurationError
from secret_rotation.settings import Settings
from secret_rotation.stack_env import StackEnvMissingError, load_stack_env

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential


class EnvironmentProblem(Exception):
    """The CLI cannot run here: no settings, no stack env file."""


def use_stack_env(path: Path) -> None:
    """Load the stack's env file into this process (the identity SDK reads its endpoint from there)."""
    try:
        values = load_stack_env(path)
    except StackEnvMissingError as exc:
        raise EnvironmentProblem(str(exc)) from None
    # Variables already set win (the dotenv convention), so one setting can be overridden for one run.
    for key, value in values.items():
        os.environ.setdefault(key, value)


def operator_credential(settings: Settings) -> AsyncTokenCredential:
    from azure.identity.aio import DefaultAzureCredential

    # The operator's own identity; on the local stack the chain reaches its managed-identity endpoint.
    return DefaultAzureCredential(
        exclude_interactive_browser_credential=True,
        managed_identity_client_id=settings.managed_identity_client_id,
    )


def environment_settings() -> Settings:
    """The app's settings from this process's environment, or what to do when they are missing."""
    try:
        return Settings.from_env(os.environ)
    except ConfigurationError as exc:
        raise EnvironmentProblem(
            f"{exc} (export the Function App's settings, or use --stack for the local stack; see docs/cli.md)"
        ) from None


@contextlib.asynccontextmanager
async def open_wiring() -> AsyncIterator[Wiring]:
    """The service's wiring for one command, closed (clients, credential, connection pool) when it ends."""
    settings = environment_settings()
    wiring = Wiring(settings, credential=operator_credential(settings))
    wiring.credential  # noqa: B018 (registers the credential for closing even if no client ends up built)
    try:
        yield wiring
    finally:
        await wiring.close()
