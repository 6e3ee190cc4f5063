"""The pending record: the new credential and the protocol's progress, kept durably in Key Vault.

It is a companion secret `<name>--rotation-pending` in the same vault. Its newest version holds the new
credential (value) and the state (tags: base version, rotation id, step), written in one call, so state
and credential can never disagree. A completed rotation writes a tombstone version and disables the
version that held the credential (which by then also lives in the promoted secret).

Rules stated here as code, for every store behind the `SecretStore` port:
- a record is created only when no active one exists (`create` checks);
- steps only move forward (`advance` checks);
- an active record is never read as absent (`load` fails loudly on a record it cannot parse).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from .errors import ConfigurationError, ConflictError, RotationError
from .ports import SecretStore
from .rotator import Credential
from .secret_value import SecretValue
from .tags import Tag

PENDING_SUFFIX = "--rotation-pending"
MAX_SECRET_NAME = 127
_TOMBSTONE = SecretValue("rotation-completed")


class Step(Enum):
    """Progress of a rotation; each value names the last step that finished."""

    CREATED = "created"
    APPLIED = "applied"
    VERIFIED = "verified"
    COMPLETED = "completed"

    @property
    def order(self) -> int:
        return list(Step).index(self)


def pending_name(secret_name: str) -> str:
    name = secret_name + PENDING_SUFFIX
    if len(name) > MAX_SECRET_NAME:
        raise ConfigurationError(
            f"secret {secret_name}: name too long for its pending record "
            f"(at most {MAX_SECRET_NAME - len(PENDING_SUFFIX)} characters)"
        )
    return name


@dataclass(frozen=True)
class PendingRecord:
    secret_name: str
    version: str
    rotation_id: str
    base_version: str
    step: Step
    credential_id: str
    value: SecretValue
    content_type: str | None


def _tags(secret_name: str, rotation_id: str, base_version: str, credential_id: str, step: Step) -> dict[str, str]:
    return {
        Tag.PENDING_FOR: secret_name,
        Tag.ROTATION_ID: rotation_id,
        Tag.PENDING_BASE_VERSION: base_version,
        Tag.PENDING_STEP: step.value,
        Tag.CREDENTIAL_ID: credential_id,
    }


def _record_tags(record: PendingRecord, step: Step) -> dict[str, str]:
    return _tags(record.secret_name, record.rotation_id, record.base_version, record.credential_id, step)


class PendingRecords:
    def __init__(self, store: SecretStore) -> None:
        self._store = store

    async def load(self, secret_name: str) -> PendingRecord | None:
        stored = await self._store.get(pending_name(secret_name))
        if stored is None:
            return None
        tags = stored.tags
        try:
            step = Step(tags[Tag.PENDING_STEP])
            if step is Step.COMPLETED:
                return None
            if tags[Tag.PENDING_FOR] != secret_name:
                raise KeyError(Tag.PENDING_FOR)
            return PendingRecord(
                secret_name=secret_name,
                version=stored.version,
                rotation_id=tags[Tag.ROTATION_ID],
                base_version=tags[Tag.PENDING_BASE_VERSION],
                step=step,
                credential_id=tags[Tag.CREDENTIAL_ID],
                value=stored.value,
                content_type=stored.content_type,
            )
        except (KeyError, ValueError) as exc:
            raise ConflictError(
                f"pending record {stored.name}/{stored.version} is unreadable ({exc}); "
                "see the runbook before deleting it, it may hold the only copy of a credential"
            ) from None

    async def create(
        self,
        secret_name: str,
        *,
        rotation_id: str,
        base_version: str,
        credential: Credential,
        value: SecretValue,
        content_type: str | None,
    ) -> PendingRecord:
        active = await self.load(secret_name)
        if active is not None:
            raise ConflictError(
                f"secret {secret_name}: rotation {active.rotation_id} is already pending; not starting another"
            )
        stored = await self._store.set(
            pending_name(secret_name),
            value,
            tags=_tags(secret_name, rotation_id, base_version, credential.credential_id, Step.CREATED),
            content_type=content_type,
        )
        return PendingRecord(
            secret_name=secret_name,
            version=stored.version,
            rotation_id=rotation_id,
            base_version=base_version,
            step=Step.CREATED,
            credential_id=credential.credential_id,
            value=value,
            content_type=content_type,
        )

    async def read_back(self, record: PendingRecord) -> SecretValue:
        """The pending value as Key Vault holds it, not as this process remembers it."""
        stored = await self._store.get(pending_name(record.secret_name), record.version)
        if stored is None:
            raise ConflictError(f"pending record of {record.secret_name} vanished during the rotation")
        return stored.value

    async def advance(self, record: PendingRecord, step: Step) -> PendingRecord:
        if step.order <= record.step.order:
            raise ValueError(f"pending step cannot go from {record.step.value} to {step.value}")
        await self._store.update(
            pending_name(record.secret_name),
            record.version,
            tags=_record_tags(record, step),
        )
        return replace(record, step=step)

    async def store_issued(self, record: PendingRecord, credential: Credential, value: SecretValue) -> PendingRecord:
        """Record a credential the provider issued during `apply`: a new version holding it and its id
        (the provider may name it, as Graph's keyId), step `applied`, in one write (the placeholder
        version before it never held a credential)."""
        if record.step is not Step.CREATED:
            raise ValueError("an issued credential replaces the placeholder of a created record only")
        issued = replace(record, credential_id=credential.credential_id)
        stored = await self._store.set(
            pending_name(record.secret_name),
            value,
            tags=_record_tags(issued, Step.APPLIED),
            content_type=record.content_type,
        )
        return replace(issued, version=stored.version, step=Step.APPLIED, value=value)

    async def complete(self, record: PendingRecord) -> str | None:
        """Close the record; returns a warning when only the clean-up of the old version failed."""
        name = pending_name(record.secret_name)
        # Tombstone first: once it is the newest version the record reads as finished, and only then
        # is the credential-bearing version disabled (a crash in between leaves it readable, not lost).
        await self._store.set(
            name,
            _TOMBSTONE,
            tags=_record_tags(record, Step.COMPLETED),
        )
        try:
            await self._store.update(name, record.version, enabled=False)
        except RotationError as exc:
            # The rotation is complete; the credential it held is the current one anyway.
            return f"rotation complete, but pending version {record.version} stays enabled: {exc}"
        return None
