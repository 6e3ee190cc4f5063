"""`status`: one secret's rotation history, from its versions' properties and tags (no value is read).

Every version the service wrote carries `RotationId` and `RotatedFromVersion`; a version without them was
written by someone else. The pending record's listing says whether a rotation is in progress and at which
step (`pending.read_state`, as the engine and the sweep read it). Outcome events and log lines live in the
outcome topic and Application Insights, not in Key Vault, so the "last outcome" here is what Key Vault
shows: the last completed, in-progress or foreign change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from secret_rotation.errors import ConflictError
from secret_rotation.pending import pending_name, read_state
from secret_rotation.ports import SecretStore, VersionProperties
from secret_rotation.tags import Tag

ROLLBACK_PREFIX = "rollback-"


@dataclass(frozen=True)
class HistoryRow:
    version: str
    created_on: datetime | None
    expires_on: datetime | None
    enabled: bool
    credential_id: str | None
    origin: str  # "rotation", "rollback" or "outside the service"
    rotation_id: str | None
    rotated_from: str | None


@dataclass(frozen=True)
class PendingState:
    rotation_id: str | None
    step: str
    base_version: str | None
    since: datetime | None
    stuck: bool


@dataclass(frozen=True)
class SecretStatus:
    vault_url: str
    name: str
    history: tuple[HistoryRow, ...]
    pending: PendingState | None
    last_outcome: str

    @property
    def exists(self) -> bool:
        return bool(self.history)


def _origin(version: VersionProperties) -> str:
    rotation_id = version.tags.get(Tag.ROTATION_ID)
    if not rotation_id:
        return "outside the service"
    return "rollback" if rotation_id.startswith(ROLLBACK_PREFIX) else "rotation"


def _row(version: VersionProperties) -> HistoryRow:
    return HistoryRow(
        version=version.version,
        created_on=version.created_on,
        expires_on=version.expires_on,
        enabled=version.enabled,
        credential_id=version.tags.get(Tag.CREDENTIAL_ID),
        origin=_origin(version),
        rotation_id=version.tags.get(Tag.ROTATION_ID),
        rotated_from=version.tags.get(Tag.ROTATED_FROM_VERSION),
    )


def _pending(name: str, records: list[VersionProperties], now: datetime, stuck_after: timedelta) -> PendingState | None:
    try:
        record = read_state(name, records).record
    except ConflictError as exc:
        return PendingState(rotation_id=None, step=f"unreadable: {exc}", base_version=None, since=None, stuck=True)
    if record is None:
        return None
    # Steps change the record's tags in place, so "since" is when the rotation created its version.
    since = next((v.created_on for v in records if v.version == record.version), None)
    return PendingState(
        rotation_id=record.rotation_id,
        step=record.step.value,
        base_version=record.base_version,
        since=since,
        stuck=since is not None and now - since > stuck_after,
    )


def _last_outcome(history: tuple[HistoryRow, ...], pending: PendingState | None) -> str:
    if not history:
        return "the secret does not exist"
    if pending:
        state = "stuck" if pending.stuck else "in progress"
        return f"rotation {pending.rotation_id} {state} at step {pending.step} (see the runbook)"
    newest = history[-1]
    if newest.origin == "outside the service":
        rotated = [row for row in history if row.origin != "outside the service"]
        if rotated:
            return f"version {newest.version} was written outside the service after its last rotation"
        return "never rotated by the service"
    return f"{newest.origin} {newest.rotation_id} completed: version {newest.version} from {newest.rotated_from}"


def _oldest_first(versions: list[VersionProperties]) -> list[VersionProperties]:
    """Key Vault lists versions by id, and `created` has one-second resolution, so a rotation and the
    version it replaced can share a second: within a second, a version comes after the one it was
    rotated (or rolled back) from, following `RotatedFromVersion`."""
    parent = {v.version: v.tags.get(Tag.ROTATED_FROM_VERSION) for v in versions}

    def depth(version: str) -> int:
        seen: set[str] = set()
        while (version := parent.get(version) or "") in parent and version not in seen:
            seen.add(version)
        return len(seen)

    return sorted(
        versions, key=lambda v: (v.created_on or datetime.min.replace(tzinfo=UTC), depth(v.version), v.version)
    )


async def secret_status(
    store: SecretStore,
    name: str,
    *,
    stuck_after: timedelta,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SecretStatus:
    rows = tuple(_row(version) for version in _oldest_first(await store.list_versions(name)))
    pending = _pending(name, await store.list_versions(pending_name(name)), clock(), stuck_after)
    return SecretStatus(store.vault_url, name, rows, pending, _last_outcome(rows, pending))
