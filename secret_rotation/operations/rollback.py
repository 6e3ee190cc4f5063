"""`rollback`: a dual-credential secret goes back to the credential it had before its last rotation.

That credential is still valid at the provider: a dual rotation regenerates only the inactive credential,
so the previous version's credential is the current alternate and was not touched. Rollback checks that
with a real login first, then writes it again as a **new** version (Key Vault cannot make an old version
current), with `CredentialId`/`AlternateCredentialId` swapped back and a `RotationId` starting with
`rollback-`, reads the new version back and logs in with it. It holds the secret's lock and refuses while
a rotation is pending, so it never races the engine.

A single-credential secret cannot be rolled back: its rotation changed the one credential in place, so the
provider no longer accepts the previous value. `RollbackRefused` says so and points to `emergency`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from secret_rotation.errors import ConfigurationError, RotationError, VerificationError
from secret_rotation.operations.status import ROLLBACK_PREFIX
from secret_rotation.outcomes import Outcome, OutcomeReporter, Status
from secret_rotation.pending import PendingRecords
from secret_rotation.ports import RotationLock, SecretStores
from secret_rotation.preflight import configure, promoted_tags
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import Pattern
from secret_rotation.scopes import Scopes
from secret_rotation.tags import Tag


class RollbackRefused(ConfigurationError):
    """Rollback is impossible or unsafe for this secret; the message says why and what to do instead."""


@dataclass(frozen=True)
class RollbackResult:
    outcome: Outcome
    restored_from: str  # the version whose credential is current again


def _new_id() -> str:
    return ROLLBACK_PREFIX + uuid.uuid4().hex


class Rollback:
    def __init__(
        self,
        stores: SecretStores,
        registry: RotatorRegistry,
        scopes: Scopes,
        lock: RotationLock,
        reporter: OutcomeReporter,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._stores = stores
        self._registry = registry
        self._scopes = scopes
        self._lock = lock
        self._reporter = reporter
        self._clock = clock
        self._new_id = new_id

    async def run(self, vault_url: str, name: str) -> RollbackResult:
        """Raises RollbackRefused (nothing changed) or another RotationError; reports the outcome either way."""
        rotation_id = self._new_id()
        try:
            return await self._run(vault_url, name, rotation_id)
        except RotationError as exc:
            await self._reporter.report(
                Outcome(
                    Status.FAILED,
                    rotation_id,
                    vault_url=vault_url,
                    secret_name=name,
                    step="rollback",
                    reason=str(exc),
                    retryable=exc.retryable,
                )
            )
            raise

    async def _run(self, vault_url: str, name: str, rotation_id: str) -> RollbackResult:
        self._scopes.check_vault(vault_url)
        store = self._stores.for_vault(vault_url)
        async with self._lock.hold(vault_url, name):
            current = await store.get(name)
            if current is None:
                raise RollbackRefused(f"secret {name} does not exist in {vault_url}")
            active = (await PendingRecords(store).load(name)).record
            if active is not None:
                raise RollbackRefused(
                    f"rotation {active.rotation_id} of {name} is pending at step {active.step.value}: "
                    "let it finish (or resolve it with the runbook) before rolling back"
                )
            config, rotator = configure(name, current.tags, self._registry, self._scopes)
            if rotator.pattern is not Pattern.DUAL:
                raise RollbackRefused(
                    f"{name} uses the single-credential rotator {rotator.name}: its last rotation changed the "
                    "credential in place, so the provider no longer accepts the previous value and there is "
                    f"nothing to go back to. If the current credential is compromised, run `emergency`."
                )
            previous_version = current.tags.get(Tag.ROTATED_FROM_VERSION)
            if not previous_version:
                raise RollbackRefused(f"version {current.version} of {name} was not written by a rotation")
            previous = await store.get(name, previous_version)
            if previous is None:
                raise RollbackRefused(f"previous version {previous_version} of {name} no longer exists")
            previous_id = previous.tags.get(Tag.CREDENTIAL_ID, "")
            if not previous_id or previous_id != config.alternate_credential_id:
                raise RollbackRefused(
                    f"previous version {previous_version} is for {previous_id!r}, not the current alternate "
                    f"{config.alternate_credential_id!r}: the history is not a plain alternation"
                )
            credential = rotator.parse(previous_id, previous.value)
            if not await rotator.accepts(config, credential):
                raise RollbackRefused(
                    f"the provider no longer accepts the credential of version {previous_version} "
                    f"({previous_id}); run `emergency` to replace both credentials"
                )
            restored = await store.set(
                name,
                previous.value,
                # What a rotation would promote: the two credentials swap (checked above: the previous
                # version holds the current alternate).
                tags=promoted_tags(
                    current.tags,
                    rotator,
                    config,
                    credential_id=previous_id,
                    rotation_id=rotation_id,
                    from_version=current.version,
                ),
                # A full validity period from now, like a promotion: time to fix what the rotation broke.
                expires_on=self._clock() + timedelta(days=config.validity_days),
                content_type=current.content_type,
            )
            newest = await store.get(name)
            if newest is None or newest.tags.get(Tag.ROTATION_ID) != rotation_id:
                raise VerificationError(f"secret {name} changed while rollback {rotation_id} was writing")
            if not await rotator.accepts(config, rotator.parse(previous_id, newest.value)):
                raise VerificationError(f"the restored version {restored.version} of {name} does not log in")
        outcome = await self._reporter.report(
            Outcome(
                Status.ROTATED,
                rotation_id,
                vault_url=vault_url,
                secret_name=name,
                from_version=current.version,
                to_version=restored.version,
                reason=f"rollback: the credential of version {previous_version} is current again",
            )
        )
        return RollbackResult(outcome, previous_version)
