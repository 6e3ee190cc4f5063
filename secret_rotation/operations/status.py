"""`status`: one secret's rotation history, from its versions' properties and tags (no value is read).

Every version the service wrote carries `RotationId` and `RotatedFromVersion`; a version without them was
written by someone else. The pending record's newest version says whether a rotation is in progress and at
which step. Outcome events and log lines live in the outcome topic and Application Insights, not in Key
Vault, so the "last outcome" here is what Key Vault shows: the last completed, in-progress or foreign change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from secret_rotation.pending import Step, pending_name
from secret_rotation.ports import VersionHistory, VersionSummary
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


def _origin(version: VersionSummary) -> str:
    rotation_id = version.tags.get(Tag.ROTATION_ID)
    if not rotation_id:
        return "outside the service"
    return "rollback" if rotation_id.startswith(ROLLBACK_PREFIX) else "rotation"


def _row(version: VersionSummary) -> HistoryRow:
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


def _pending(records: list[VersionSummary], now: datetime, stuck_after: timedelta) -> PendingState | None:
    if not records:
        return None
    newest = records[-1]
    step = newest.tags.get(Tag.PENDING_STEP, "unreadable")
    if step == Step.COMPLETED.value:
        return None
    # The record's step is updated in place, so "since" is when its newest version was created.
    since = newest.created_on
    return PendingState(
        rotation_id=newest.tags.get(Tag.ROTATION_ID),
        step=step,
        base_version=newest.tags.get(Tag.PENDING_BASE_VERSION),
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


async def secret_status(
    history: VersionHistory,
    vault_url: str,
    name: str,
    *,
    stuck_after: timedelta,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> SecretStatus:
    rows = tuple(_row(version) for version in await history.versions(name))
    pending = _pending(await history.versions(pending_name(name)), clock(), stuck_after)
    return SecretStatus(vault_url, name, rows, pending, _last_outcome(rows, pending))
