"""In-memory fakes of the engine's ports and of a provider, for fast unit tests of the engine only."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from datetime import datetime

from secret_rotation.errors import (
    AccessDeniedError,
    LockedError,
    ProviderRefusedError,
    SecretDisabledError,
    TransientError,
)
from secret_rotation.outcomes import Outcome
from secret_rotation.ports import SecretSummary, StoredSecret, VersionProperties
from secret_rotation.rotator import ApplyRequest, Credential, DualCredentialRotator, SingleCredentialRotator
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig

VAULT = "https://kv-unit.vault.azure.net"


class InMemorySecretStore:
    def __init__(self, vault_url: str = VAULT) -> None:
        self._vault_url = vault_url
        self.versions: dict[str, list[StoredSecret]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail_at_call: int | None = None  # index into `calls` that raises a transient fault
        self.now: datetime | None = None  # the store's clock, for update times
        self.updated: dict[tuple[str, str], datetime] = {}
        self.read_only: set[str] = set()  # names the identity may read but not write (per-secret RBAC)
        self.no_update: set[str] = set()  # names it may create versions of but not update (a custom role)

    @property
    def vault_url(self) -> str:
        return self._vault_url

    def _check(self, operation: str, name: str) -> None:
        self.calls.append((operation, name))
        if self.fail_at_call == len(self.calls) - 1:
            self.fail_at_call = None
            raise TransientError(f"injected fault at {operation} of {name}")

    def _check_write(self, name: str) -> None:
        if name in self.read_only:
            raise AccessDeniedError(f"Key Vault write of secret {name}: access denied (403 ForbiddenByRbac)")

    async def get(self, name: str, version: str | None = None) -> StoredSecret | None:
        self._check("get", name)
        versions = self.versions.get(name, [])
        found = (
            (versions[-1] if versions else None)
            if version is None
            else next((v for v in versions if v.version == version), None)
        )
        if found is not None and not found.enabled:
            # Key Vault answers a get of a disabled version with 403 SecretDisabled, versionless or not.
            raise SecretDisabledError(f"Key Vault get of secret {name}: the secret's newest version is disabled")
        return found

    async def set(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str],
        expires_on: datetime | None = None,
        content_type: str | None = None,
    ) -> StoredSecret:
        self._check("set", name)
        self._check_write(name)
        stored = StoredSecret(name, uuid.uuid4().hex, value, dict(tags), True, expires_on, content_type)
        self.versions.setdefault(name, []).append(stored)
        self._touch(name, stored.version)
        return stored

    async def update(
        self, name: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> None:
        self._check("update", name)
        self._check_write(name)
        if name in self.no_update:
            raise AccessDeniedError(f"Key Vault update of secret {name}: access denied (403 ForbiddenByRbac)")
        self._touch(name, version)
        versions = self.versions[name]
        for index, stored in enumerate(versions):
            if stored.version == version:
                versions[index] = replace(
                    stored,
                    tags=dict(tags) if tags is not None else stored.tags,
                    enabled=stored.enabled if enabled is None else enabled,
                )

    def _touch(self, name: str, version: str) -> None:
        if self.now is not None:
            self.updated[(name, version)] = self.now

    async def list_secrets(self) -> AsyncIterator[SecretSummary]:
        self._check("list", "*")
        for name, versions in sorted(self.versions.items()):
            newest = versions[-1]
            updated = self.updated.get((name, newest.version))
            yield SecretSummary(name, newest.tags, newest.enabled, newest.expires_on, updated)

    async def list_versions(self, name: str) -> list[VersionProperties]:
        self._check("list_versions", name)
        # Key Vault lists versions by id, not by creation: sort so no test can depend on creation order.
        listed = [VersionProperties(v.version, v.tags, v.enabled) for v in self.versions.get(name, [])]
        return sorted(listed, key=lambda v: v.version)


class InMemoryStores:
    def __init__(self, store: InMemorySecretStore) -> None:
        self.store = store

    def for_vault(self, vault_url: str) -> InMemorySecretStore:
        return self.store


class InMemoryQueue:
    def __init__(self) -> None:
        self.messages: list[str] = []

    async def enqueue(self, body: str) -> None:
        self.messages.append(body)


class InMemoryLock:
    def __init__(self) -> None:
        self.held: set[tuple[str, str]] = set()

    @contextlib.asynccontextmanager
    async def hold(self, vault_url: str, secret_name: str) -> AsyncIterator[None]:
        key = (vault_url, secret_name)
        if key in self.held:
            raise LockedError(f"secret {secret_name} is being rotated by another worker")
        self.held.add(key)
        try:
            yield
        finally:
            self.held.discard(key)


class RecordingSink:
    def __init__(self) -> None:
        self.published: list[Outcome] = []

    async def publish(self, outcome: Outcome) -> None:
        self.published.append(outcome)


class FakeProvider:
    """A provider holding one password per credential id; counts changes."""

    def __init__(self) -> None:
        self.passwords: dict[str, str] = {}
        self.changes = 0
        self.logins = 0
        self.refuse_changes = False

    def accepts(self, credential: Credential) -> bool:
        self.logins += 1
        return self.passwords.get(credential.credential_id) == credential.secret.reveal()


class _FakeRotatorMixin:
    provider: FakeProvider  # set per test world, see `rotators_for`

    def scope(self, config: RotationConfig) -> str:
        return config.provider_address

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        return self.provider.accepts(credential)

    def _change(self, authority: Credential | None, request: ApplyRequest) -> None:
        if self.provider.refuse_changes:
            raise ProviderRefusedError(
                f"provider refused the change of {request.new.credential_id} to {request.new.secret.reveal()}"
            )
        if authority is None or not self.provider.accepts(authority):
            raise ProviderRefusedError("authority not accepted")
        self.provider.passwords[request.new.credential_id] = request.new.secret.reveal()
        self.provider.changes += 1


class FakeSingleRotator(_FakeRotatorMixin, SingleCredentialRotator):
    name = "fake-single"

    async def apply(self, request: ApplyRequest) -> None:
        self._change(request.current, request)


class FakeDualRotator(_FakeRotatorMixin, DualCredentialRotator):
    name = "fake-dual"

    async def apply(self, request: ApplyRequest) -> None:
        self._change(request.admin, request)


def rotators_for(provider: FakeProvider) -> list[type[SingleCredentialRotator | DualCredentialRotator]]:
    """Rotator classes bound to one provider, so every test has its own."""
    return [
        type("BoundFakeSingle", (FakeSingleRotator,), {"provider": provider}),
        type("BoundFakeDual", (FakeDualRotator,), {"provider": provider}),
    ]
