"""The pending record: the new credential and the protocol's progress, kept durably in Key Vault.

It is a companion secret `<name>--rotation-pending` in the same vault. Each rotation writes exactly one
version of it (one CREATE): the new credential as value, the state as tags (base version, rotation id,
step), in one call, so state and credential can never disagree. Later steps change only that version's
tags (properties updates, not CREATEs), and closing it is one update that sets `RotationStep=completed`
and disables the version together: there is no moment where the record reads as finished while its
credential-bearing version is still enabled, and a crash before that update leaves the record open, so
a redelivery or the sweep finishes it.

The state is read from the version listing (tags and `enabled`, never values), because a versionless get
of a record whose newest version is disabled answers 403 `SecretDisabled`. The value is read by version,
once per run, and only when the run did not write it itself.

Rules stated here as code, for every store behind the `SecretStore` port:
- a record is created only when none is open (`create` checks);
- steps only move forward (`advance` checks);
- an open record is never read as absent (`load` fails loudly on an open version it cannot parse).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from .errors import ConfigurationError, ConflictError
from .ports import SecretStore, VersionProperties
from .rotator import Credential
from .secret_value import SecretValue
from .tags import Tag

PENDING_SUFFIX = "--rotation-pending"
MAX_SECRET_NAME = 127


class Step(Enum):
    """Progress of a rotation; each value names the last step that finished. `verified` is no longer
    written (verifying again on resume costs a login, recording it a Key Vault request each time) but
    is still read, for records written by earlier versions."""

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
    """An open rotation. `versions` are every open version of it (more than one only when a lost answer
    made the transport resend the CREATE); `version` is the one whose step the engine advances."""

    secret_name: str
    version: str
    rotation_id: str
    base_version: str
    step: Step
    credential_id: str
    versions: tuple[str, ...]
    created_here: bool = False  # written by this very run: nothing can have applied it yet


@dataclass(frozen=True)
class PendingState:
    """What the listing says: the open record, if any, and versions of finished rotations left open
    (a crash between closing duplicate versions, or a record closed by an earlier protocol)."""

    record: PendingRecord | None
    leftovers: tuple[str, ...] = ()


def pending_tags(
    secret_name: str, rotation_id: str, base_version: str, credential_id: str, step: Step
) -> dict[str, str]:
    return {
        Tag.PENDING_FOR: secret_name,
        Tag.ROTATION_ID: rotation_id,
        Tag.PENDING_BASE_VERSION: base_version,
        Tag.PENDING_STEP: step.value,
        Tag.CREDENTIAL_ID: credential_id,
    }


def _record_tags(record: PendingRecord, step: Step) -> dict[str, str]:
    return pending_tags(record.secret_name, record.rotation_id, record.base_version, record.credential_id, step)


def _step(version: VersionProperties) -> Step | None:
    raw = version.tags.get(Tag.PENDING_STEP)
    try:
        return Step(raw) if raw is not None else None
    except ValueError:
        return None


def read_state(secret_name: str, versions: list[VersionProperties]) -> PendingState:
    """The record's state from its version listing (pure, so the sweep and operator tools agree)."""
    name = pending_name(secret_name)
    finished = {
        v.tags.get(Tag.ROTATION_ID)
        for v in versions
        if _step(v) is Step.COMPLETED or (not v.enabled and _step(v) is not None)
    }
    open_versions = [v for v in versions if v.enabled and _step(v) is not Step.COMPLETED]
    leftovers = tuple(v.version for v in open_versions if v.tags.get(Tag.ROTATION_ID) in finished)
    by_rotation: dict[str, list[VersionProperties]] = defaultdict(list)
    for v in open_versions:
        if v.version in leftovers:
            continue
        rotation_id = v.tags.get(Tag.ROTATION_ID)
        step = _step(v)
        if not rotation_id or step is None or v.tags.get(Tag.PENDING_FOR) != secret_name:
            raise ConflictError(
                f"pending record {name}/{v.version} is unreadable (tags {sorted(v.tags)}); "
                "see the runbook before deleting it, it may hold the only copy of a credential"
            )
        by_rotation[rotation_id].append(v)
    if len(by_rotation) > 1:
        raise ConflictError(
            f"pending record {name} has open versions of several rotations ({', '.join(sorted(by_rotation))}); "
            "see the runbook"
        )
    if not by_rotation:
        return PendingState(None, leftovers)
    (rotation_id, copies), *_ = by_rotation.items()
    # The copy that went furthest carries the state; the others hold the same credential.
    lead = max(copies, key=lambda v: (getattr(_step(v), "order", -1), v.version))
    try:
        record = PendingRecord(
            secret_name=secret_name,
            version=lead.version,
            rotation_id=rotation_id,
            base_version=lead.tags[Tag.PENDING_BASE_VERSION],
            step=_step(lead) or Step.CREATED,
            credential_id=lead.tags[Tag.CREDENTIAL_ID],
            versions=tuple(sorted(v.version for v in copies)),
        )
    except KeyError as exc:
        raise ConflictError(
            f"pending record {name}/{lead.version} is unreadable (missing {exc}); "
            "see the runbook before deleting it, it may hold the only copy of a credential"
        ) from None
    return PendingState(record, leftovers)


class PendingRecords:
    """One run's view of one vault's pending records; remembers the value it read or wrote, so the
    run reads it from Key Vault at most once."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store
        self._values: dict[tuple[str, str], SecretValue] = {}

    async def load(self, secret_name: str) -> PendingState:
        return read_state(secret_name, await self._store.list_versions(pending_name(secret_name)))

    async def create(
        self,
        secret_name: str,
        *,
        rotation_id: str,
        base_version: str,
        credential: Credential,
        value: SecretValue,
        content_type: str | None,
        expires_on: datetime,
        state: PendingState,
    ) -> PendingRecord:
        """Write the record's one version. `state` is this run's `load` under the same lock."""
        if state.record is not None:
            raise ConflictError(
                f"secret {secret_name}: rotation {state.record.rotation_id} is already pending; not starting another"
            )
        stored = await self._store.set(
            pending_name(secret_name),
            value,
            tags=pending_tags(secret_name, rotation_id, base_version, credential.credential_id, Step.CREATED),
            # An expiry and the source's content type: what common "Deny" policies on secrets require.
            expires_on=expires_on,
            content_type=content_type,
        )
        return PendingRecord(
            secret_name=secret_name,
            version=stored.version,
            rotation_id=rotation_id,
            base_version=base_version,
            step=Step.CREATED,
            credential_id=credential.credential_id,
            versions=(stored.version,),
            created_here=True,
        )

    async def value(self, record: PendingRecord) -> SecretValue:
        """The pending value as Key Vault holds it (read once per run, then remembered)."""
        key = (record.secret_name, record.version)
        if key not in self._values:
            stored = await self._store.get(pending_name(record.secret_name), record.version)
            if stored is None:
                raise ConflictError(f"pending record of {record.secret_name} vanished during the rotation")
            self._values[key] = stored.value
        return self._values[key]

    async def advance(self, record: PendingRecord, step: Step) -> PendingRecord:
        if step.order <= record.step.order or step is Step.COMPLETED:
            raise ValueError(f"pending step cannot go from {record.step.value} to {step.value}")
        await self._store.update(pending_name(record.secret_name), record.version, tags=_record_tags(record, step))
        return replace(record, step=step)

    async def complete(self, record: PendingRecord) -> None:
        """Close every open version of the rotation: `completed` and disabled in one update each."""
        for version in record.versions:
            await self.close(record.secret_name, version, tags=_record_tags(record, Step.COMPLETED))

    async def close(self, secret_name: str, version: str, *, tags: dict[str, str] | None = None) -> None:
        """Disable one version (and mark it completed when tags are given), in one call."""
        await self._store.update(pending_name(secret_name), version, tags=tags, enabled=False)
