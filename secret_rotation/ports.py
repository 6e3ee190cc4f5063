"""The engine's ports: the little it needs from storage, as Protocols.

Azure adapters (`keyvault_store`, `rotation_queue`) implement them for production; in-memory fakes in
`tests/unit` implement them for fast engine tests. Adapters translate their SDK's errors into
`errors.RotationError` subclasses, so the engine never sees an SDK exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from .secret_value import SecretValue

if TYPE_CHECKING:
    from .outcomes import Outcome


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


@dataclass(frozen=True)
class VersionProperties:
    """One version as a version listing shows it: tags and flags, never the value (readable when disabled)."""

    version: str
    tags: Mapping[str, str]
    enabled: bool
    created_on: datetime | None = None
    expires_on: datetime | None = None


@dataclass(frozen=True)
class SecretSummary:
    """A secret's current version as a listing shows it: properties only, never the value."""

    name: str
    tags: Mapping[str, str]
    enabled: bool
    expires_on: datetime | None
    updated_on: datetime | None


class SecretStore(Protocol):
    """One vault's secrets."""

    @property
    def vault_url(self) -> str: ...

    async def get(self, name: str, version: str | None = None) -> StoredSecret | None:
        """The given version, or without one the current version as Key Vault defines it (a versionless
        read); None when the secret or version does not exist."""

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
        """Change a version's tags and/or enabled flag in one call (no new version); with neither, a no-op
        update that only proves the identity may update the secret (preflight)."""

    def list_secrets(self) -> AsyncIterator[SecretSummary]:
        """Every secret's current properties, page by page."""

    async def list_versions(self, name: str) -> list[VersionProperties]:
        """Every version's properties (order unspecified: Key Vault sorts by id); empty when none exist."""


class SecretStores(Protocol):
    def for_vault(self, vault_url: str) -> SecretStore: ...


class JobQueue(Protocol):
    async def enqueue(self, body: str) -> None:
        """Hand one job (an event's JSON text) durably to the worker."""


class RotationLock(Protocol):
    def hold(self, vault_url: str, secret_name: str) -> AbstractAsyncContextManager[None]:
        """Exclusive per secret across instances; raises LockedError when another worker holds it."""


class OutcomeSink(Protocol):
    async def publish(self, outcome: Outcome) -> None:
        """Deliver one outcome event; must not raise (a lost outcome event never fails a rotation)."""
