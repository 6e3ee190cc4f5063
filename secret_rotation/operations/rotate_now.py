"""`rotate` and `emergency`: on-demand rotations run in this process through the engine itself, exactly as
the worker runs a queued job (same lock, same protocol, same outcome reporting), but not waiting for the
secret to be due.

An emergency rotation assumes the current credential is exposed. For a single-credential secret one
rotation kills it. For a dual-credential secret one rotation only regenerates the *inactive* credential
and promotes it, leaving the exposed one valid (it becomes the alternate); so a second rotation follows
at once and regenerates that one too. When it finishes both provider credentials are new.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from secret_rotation.engine import RotationEngine
from secret_rotation.errors import RotationError
from secret_rotation.events import EventSchema, SecretEvent, SecretEventType
from secret_rotation.outcomes import Outcome, OutcomeReporter, Status
from secret_rotation.ports import SecretStore, SecretStores
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import Pattern
from secret_rotation.tags import rotator_for


def _new_id() -> str:
    return uuid.uuid4().hex


async def rotate_once(
    engine: RotationEngine,
    reporter: OutcomeReporter,
    vault_url: str,
    name: str,
    *,
    new_id: Callable[[], str] = _new_id,
) -> Outcome:
    """One on-demand rotation of the secret's current version; its outcome is reported like the worker's."""
    correlation_id = new_id()
    event = SecretEvent(
        event_id=correlation_id,
        event_type=SecretEventType.NEAR_EXPIRY,
        schema=EventSchema.EVENT_GRID,
        vault_url=vault_url,
        secret_name=name,
        version=None,  # whatever is current when the engine holds the lock
        on_demand=True,
    )
    return await reporter.report(await engine.rotate(event))


async def rotations_needed(store: SecretStore, registry: RotatorRegistry, name: str) -> int:
    """2 for a dual-credential secret (both credentials must change), else 1 (from properties only)."""
    versions = [v for v in await store.list_versions(name) if v.enabled]
    newest = max(versions, key=lambda v: (v.created_on or datetime.min.replace(tzinfo=UTC), v.version), default=None)
    rotator_type = (rotator_for(newest.tags) or "") if newest else ""
    if not rotator_type:
        return 1  # the engine will refuse it with the reason
    try:
        pattern = registry.get(rotator_type).pattern
    except RotationError:
        return 1  # an unknown or refused rotator: the engine's outcome says why
    return 2 if pattern is Pattern.DUAL else 1


async def emergency(
    *,
    engine: RotationEngine,
    stores: SecretStores,
    registry: RotatorRegistry,
    reporter: OutcomeReporter,
    vault_url: str,
    name: str,
    new_id: Callable[[], str] = _new_id,
) -> list[Outcome]:
    """Every credential of the secret replaced now; stops at the first rotation that does not complete."""
    outcomes: list[Outcome] = []
    for _ in range(await rotations_needed(stores.for_vault(vault_url), registry, name)):
        outcome = await rotate_once(engine, reporter, vault_url, name, new_id=new_id)
        outcomes.append(outcome)
        if outcome.status is not Status.ROTATED:
            break
    return outcomes
