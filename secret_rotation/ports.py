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
class SecretSummary:
    """A secret's current version as a listing shows it: properties only, never the value."""

    name: str
    tags: Mapping[str, str]
    enabled: bool
    expires_on: datetime | None
    updated_on: datetime | None


@dataclass(frozen=True)
class VersionSummary:
    """One version of a secret as a version listing shows it: properties only, never the value."""

    name: str
    version: str
    tags: Mapping[str, str]
    enabled: bool
    created_on: datetime | None
    expires_on: datetime | None


class VersionHistory(Protocol):
    """Every version of one secret, for operators (`operations.status`); reads no value."""

    async def versions(self, name: str) -> list[VersionSummary]:
        """Oldest first; [] when the secret does not exist."""


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

    def list_secrets(self) -> AsyncIterator[SecretSummary]:
        """Every secret's current properties, page by page."""

    async def newest_version(self, name: str) -> str | None:
        """The id of the newest version, from properties only; None when the secret does not exist."""


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
