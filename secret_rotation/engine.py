"""The rotation protocol: one state machine for every rotator (docs/protocol.md draws it and counts
its Key Vault requests).

    start -> (preflight) -> CREATED -> (record writable?) -> APPLIED -> (verify, promote) -> COMPLETED

- load:      the secret's current version (a versionless get: Key Vault's own definition of current) and
             the pending record's state (its version listing: tags and `enabled`, no values);
- preflight: everything promotion and completion need, checked before anything is written (`preflight`);
- create:    the new credential is written to the pending record in Key Vault *before* the provider
             changes, so no credential the provider accepts ever exists only in memory (CREATE 1 of 2);
- apply:     first a no-op update proves the pending record may be updated (its later steps need it);
             then the rotator changes the provider; on resume it is skipped when the provider already
             accepts the pending credential (a crash after the change);
- verify:    the pending value, as read back from Key Vault with our identity (once per run, before apply),
             is used for a real login (repeated on resume: a login is cheaper than recording it);
- promote:   a new version of the secret with that value, carried-over tags, the rotator's tag changes,
             `RotationId` and `expires = now + ValidityPeriodDays` (CREATE 2 of 2); recognised on resume by
             `RotationId`;
- finish:    the current version is read back and logs in; then the pending record is closed with one
             properties update (completed + disabled together).

The whole run holds the secret's lock (a blob lease), so two instances never rotate one secret at once.

Every step checks before it acts, so a redelivered message resumes where a crashed worker stopped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import preflight
from .errors import ConfigurationError, ConflictError, LockedError, RotationError, VerificationError
from .events import SecretEvent
from .outcomes import Outcome, Status
from .pending import PendingRecord, PendingRecords, PendingState, Step, pending_name
from .ports import RotationLock, SecretStore, SecretStores, StoredSecret
from .registry import RotatorRegistry
from .rotator import ApplyRequest, Credential, Rotator
from .scopes import Scopes
from .secret_value import Redactor
from .tags import NEAR_EXPIRY_DAYS, RotationConfig, Tag


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_rotation_id() -> str:
    return uuid.uuid4().hex


@dataclass
class _Rotation:
    """What one run of the protocol knows; `step` names the step in progress for failure outcomes."""

    event: SecretEvent
    store: SecretStore
    pending: PendingRecords
    redactor: Redactor = field(default_factory=Redactor)
    step: str = "load"
    from_version: str | None = None


class RotationEngine:
    def __init__(
        self,
        stores: SecretStores,
        registry: RotatorRegistry,
        scopes: Scopes,
        lock: RotationLock,
        *,
        clock: Callable[[], datetime] = _utcnow,
        new_rotation_id: Callable[[], str] = _new_rotation_id,
    ) -> None:
        self._stores = stores
        self._registry = registry
        self._scopes = scopes
        self._lock = lock
        self._clock = clock
        self._new_rotation_id = new_rotation_id

    async def rotate(self, event: SecretEvent) -> Outcome:
        store = self._stores.for_vault(event.vault_url)  # builds a client; no I/O before the checks
        run = _Rotation(event=event, store=store, pending=PendingRecords(store))
        try:
            self._scopes.check_vault(event.vault_url)
            async with self._lock.hold(event.vault_url, event.secret_name):
                return await self._rotate(run)
        except LockedError as exc:
            return self._outcome(run, Status.DEFERRED, reason=str(exc), retryable=True)
        except RotationError as exc:
            reason, retryable = str(exc), exc.retryable
        except Exception as exc:
            # A rotator's or SDK's unexpected error: retry it, and never let its text leak a value.
            reason, retryable = f"unexpected {exc.__class__.__name__}: {exc}", True
        return self._outcome(run, Status.FAILED, reason=run.redactor.scrub(reason), retryable=retryable)

    async def _rotate(self, run: _Rotation) -> Outcome:
        name = run.event.secret_name
        pending_name(name)  # reject names too long for a pending record before anything else
        current = await run.store.get(name)
        if current is None:
            raise ConfigurationError(f"secret {name} does not exist in {run.event.vault_url}")
        state = await run.pending.load(name)
        run.redactor.remember(current.value)
        for version in state.leftovers:  # a finished rotation's version left open: close it, idempotently
            await run.pending.close(name, version)
        record = state.record

        if record is None:
            # A job without a version (the sweep's) means "whatever is current".
            if run.event.version is not None and run.event.version != current.version:
                return self._outcome(
                    run,
                    Status.SKIPPED,
                    from_version=run.event.version,
                    reason=f"event is for version {run.event.version}, the current version is "
                    f"{current.version}: already rotated or superseded",
                )
            reason_not_due = None if run.event.on_demand else self._not_due(current)
            if reason_not_due:
                return self._outcome(run, Status.SKIPPED, from_version=current.version, reason=reason_not_due)
            config, rotator = self._configure(name, current)
            run.step = "preflight"
            preflight.check(name, current.tags, config, rotator, content_type=current.content_type)
            await preflight.check_write_access(run.store, name, current.version, needed_for="promote")
            record = await self._create(run, current, config, rotator, state)
        elif record.base_version != current.version:
            if current.tags.get(Tag.ROTATION_ID) != record.rotation_id:
                raise ConflictError(
                    f"secret {name} got version {current.version} outside rotation {record.rotation_id} "
                    f"(pending since version {record.base_version}); see the runbook"
                )
            # Promoted before a crash: only the finish remains.
            run.from_version = record.base_version
            config, rotator = self._configure(name, current)
            return await self._finish(run, record, config, rotator, current)
        else:
            config, rotator = self._configure(name, current)
        run.from_version = current.version
        return await self._advance(run, current, record, config, rotator)

    def _not_due(self, current: StoredSecret) -> str | None:
        if current.expires_on is None:
            return f"secret {current.name} has no expiry date, so it is not due"
        if current.expires_on > self._clock() + timedelta(days=NEAR_EXPIRY_DAYS):
            return f"not due: expires {current.expires_on.isoformat()}, more than {NEAR_EXPIRY_DAYS} days away"
        return None

    def _configure(self, name: str, current: StoredSecret) -> tuple[RotationConfig, Rotator]:
        return preflight.configure(name, current.tags, self._registry, self._scopes)

    async def _create(
        self,
        run: _Rotation,
        current: StoredSecret,
        config: RotationConfig,
        rotator: Rotator,
        state: PendingState,
    ) -> PendingRecord:
        run.step = "create"
        target_id = rotator.target_credential_id(config)
        credential = Credential(target_id, rotator.generate(config, target_id))
        value = rotator.render(credential)
        run.redactor.remember(credential.secret, value)
        return await run.pending.create(
            run.event.secret_name,
            rotation_id=self._new_rotation_id(),
            base_version=current.version,
            credential=credential,
            value=value,
            content_type=current.content_type,
            # The pending copy expires with the version it will become (policies may require an expiry).
            expires_on=self._clock() + timedelta(days=config.validity_days),
            state=state,
        )

    async def _advance(
        self,
        run: _Rotation,
        current: StoredSecret,
        record: PendingRecord,
        config: RotationConfig,
        rotator: Rotator,
    ) -> Outcome:
        if record.step is Step.CREATED:
            run.step = "apply"
            issued = await self._apply(run, current, record, config, rotator)
            if issued is None:
                record = await run.pending.advance(record, Step.APPLIED)
            else:
                # The provider chose the value: it goes to Key Vault before anything relies on it.
                value = rotator.render(issued)
                run.redactor.remember(issued.secret, value)
                record = await run.pending.store_issued(
                    record,
                    issued,
                    value,
                    expires_on=self._clock() + timedelta(days=config.validity_days),
                    content_type=current.content_type,
                )
        # Key Vault's copy of the pending value (read once per run, in `_apply` or here): verified, then promoted.
        stored_value = await run.pending.value(record)
        run.redactor.remember(stored_value)
        if record.step is Step.APPLIED:  # (a record left `verified` by an earlier version goes straight on)
            run.step = "verify"
            await self._verify_login(rotator, config, rotator.parse(record.credential_id, stored_value))
        run.step = "promote"
        await run.store.set(
            run.event.secret_name,
            stored_value,
            tags=preflight.promoted_tags(
                current.tags,
                rotator,
                config,
                credential_id=record.credential_id,
                rotation_id=record.rotation_id,
                from_version=current.version,
            ),
            expires_on=self._clock() + timedelta(days=config.validity_days),
            content_type=current.content_type,
        )
        return await self._finish(run, record, config, rotator)

    async def _apply(
        self,
        run: _Rotation,
        current: StoredSecret,
        record: PendingRecord,
        config: RotationConfig,
        rotator: Rotator,
    ) -> Credential | None:
        new = rotator.parse(record.credential_id, await run.pending.value(record))
        # A record written by this very run cannot have been applied yet: no login to find out; and a
        # provider-issued credential's placeholder is never accepted: there is nothing to ask.
        if not record.created_here and not rotator.issues_credentials and await rotator.accepts(config, new):
            return None  # applied before a crash; changing it again would gain nothing
        # The steps after apply update the record: prove that is allowed while the provider is untouched.
        run.step = "preflight"
        await preflight.check_write_access(
            run.store, pending_name(record.secret_name), record.version, needed_for="advance and close the record"
        )
        run.step = "apply"
        admin = await self._admin_credential(run, config)
        return await rotator.apply(
            ApplyRequest(
                config=config,
                new=new,
                current=rotator.parse(config.credential_id, current.value),
                admin=admin,
            )
        )

    async def _admin_credential(self, run: _Rotation, config: RotationConfig) -> Credential | None:
        if config.admin_secret_name is None:
            return None
        admin = await run.store.get(config.admin_secret_name)
        if admin is None:
            raise ConfigurationError(
                f"{Tag.ADMIN_SECRET_NAME} {config.admin_secret_name} does not exist in {run.event.vault_url}"
            )
        admin_id = admin.tags.get(Tag.CREDENTIAL_ID)
        if not admin_id:
            raise ConfigurationError(f"admin secret {admin.name} has no {Tag.CREDENTIAL_ID} tag")
        run.redactor.remember(admin.value)
        return Credential(admin_id, admin.value)

    async def _verify_login(self, rotator: Rotator, config: RotationConfig, credential: Credential) -> None:
        if not await rotator.accepts(config, credential):
            raise VerificationError(f"provider does not accept the new credential for {credential.credential_id} yet")

    async def _finish(
        self,
        run: _Rotation,
        record: PendingRecord,
        config: RotationConfig,
        rotator: Rotator,
        newest: StoredSecret | None = None,
    ) -> Outcome:
        run.step = "finish"
        name = run.event.secret_name
        # What readers get now (a versionless read, unless this run just made one): our promoted
        # version, and it must log in.
        if newest is None:
            newest = await run.store.get(name)
        if newest is None or newest.tags.get(Tag.ROTATION_ID) != record.rotation_id:
            raise ConflictError(f"secret {name} changed while rotation {record.rotation_id} was finishing")
        await self._verify_login(rotator, config, rotator.parse(record.credential_id, newest.value))
        await run.pending.complete(record)
        return self._outcome(run, Status.ROTATED, to_version=newest.version)

    def _outcome(
        self,
        run: _Rotation,
        status: Status,
        *,
        from_version: str | None = None,
        to_version: str | None = None,
        reason: str | None = None,
        retryable: bool = False,
    ) -> Outcome:
        return Outcome(
            status=status,
            correlation_id=run.event.event_id,
            vault_url=run.event.vault_url,
            secret_name=run.event.secret_name,
            from_version=from_version or run.from_version,
            to_version=to_version,
            step=run.step if status is Status.FAILED else None,
            reason=reason,
            retryable=retryable,
        )
