"""The engine's ports: the little it needs from storage, as Protocols.

Azure adapters (`keyvault_store`, `rotation_queue`) implement them for production; in-memory fakes in
`tests/unit` implement them for fast engine tests. Adapters translate their SDK's errors into
`errors.RotationError` subclasses, so the engine never sees an SDK exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .secret_value import SecretValue


@dataclass(frozen=True)
class StoredSecret:
    """One version of a secret, as the store returned it (the value stays wrapped)."""

    name: str
    version: str
    value: SecretValue = field(repr=False)
    tags: Mapping[str, str]
    enabled: bool = True
    expires_on: datetime | None = None
    content_type: str | None = None


class SecretStore(Protocol):
    """One vault's secrets."""

    @property
    def vault_url(self) -> str: ...

    async def get(self, name: str, version: str | None = None) -> StoredSecret | None:
        """The given version, or the newest one; None when the secret or version does not exist."""

    async def set(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str],
        expires_on: datetime | None = None,
        content_type: str | None = None,
    ) -> StoredSecret:
        """Write a new version and return it."""

    async def update(
        self, name: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> None:
        """Change a version's tags or enabled flag (no new version)."""


class SecretStores(Protocol):
    def for_vault(self, vault_url: str) -> SecretStore: ...


class JobQueue(Protocol):
    async def enqueue(self, body: str) -> None:
        """Hand one job (an event's JSON text) durably to the worker."""
