"""Progress of a rotation as the protocol records it: a `SecretStores` wrapper that reports each durable
step (the pending record's steps, the promotion) as the engine writes it. The CLI's `rotate` and
`emergency` show these; the engine needs no hook, and what is shown is what Key Vault holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime

from secret_rotation.ports import SecretStore, SecretStores, SecretSummary, StoredSecret, VersionProperties
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import Tag

# (secret name, step, detail): step is a pending-record step or "promoted".
Listener = Callable[[str, str, str], None]

STEP_TEXT = {
    "created": "new credential stored in the pending record (before the provider changes)",
    "applied": "provider changed",
    "verified": "login with the stored credential verified",  # written only by earlier versions
    # Verification is not recorded on its own (pending.Step): a promotion always follows a verified login.
    "promoted": "login with the stored credential verified; new version written",
    "completed": "newest version logged in; pending record closed",
}


class ProgressStore:
    def __init__(self, inner: SecretStore, listener: Listener) -> None:
        self._inner = inner
        self._listener = listener

    @property
    def vault_url(self) -> str:
        return self._inner.vault_url

    async def get(self, name: str, version: str | None = None) -> StoredSecret | None:
        return await self._inner.get(name, version)

    async def set(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str],
        expires_on: datetime | None = None,
        content_type: str | None = None,
    ) -> StoredSecret:
        stored = await self._inner.set(name, value, tags=tags, expires_on=expires_on, content_type=content_type)
        if Tag.PENDING_STEP in tags:
            self._listener(tags.get(Tag.PENDING_FOR, name), tags[Tag.PENDING_STEP], stored.version)
        elif Tag.ROTATION_ID in tags:
            self._listener(name, "promoted", stored.version)
        return stored

    async def update(
        self, name: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> None:
        await self._inner.update(name, version, tags=tags, enabled=enabled)
        if tags and Tag.PENDING_STEP in tags:
            self._listener(tags.get(Tag.PENDING_FOR, name), tags[Tag.PENDING_STEP], version)

    def list_secrets(self) -> AsyncIterator[SecretSummary]:
        return self._inner.list_secrets()

    async def list_versions(self, name: str) -> list[VersionProperties]:
        return await self._inner.list_versions(name)


class ProgressStores:
    def __init__(self, inner: SecretStores, listener: Listener) -> None:
        self._inner = inner
        self._listener = listener

    def for_vault(self, vault_url: str) -> ProgressStore:
        return ProgressStore(self._inner.for_vault(vault_url), self._listener)
