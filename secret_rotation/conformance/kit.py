"""The conformance kit: a rotator, driven through the real `RotationEngine` against the local stack (the
Key Vault double, the blob lease lock on Azurite, the real provider), checked for what the protocol
relies on. It reads only public behaviour: outcomes, the versions and tags Key Vault holds, and the
provider's own answer to a login (`ConformanceCase.logs_in`), never the pending record's format.

Each `check_*` raises `ConformanceFailure` listing everything it found wrong.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from secret_rotation.engine import RotationEngine
from secret_rotation.errors import ConfigurationError, ProviderRefusedError
from secret_rotation.events import EventSchema, SecretEvent, SecretEventType
from secret_rotation.outcomes import Outcome, Status, log_outcome
from secret_rotation.pending import pending_name
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import ApplyRequest, Credential, Pattern, Rotator
from secret_rotation.scopes import Scopes
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig, Tag

from .case import ConformanceCase, Seed
from .instruments import Fault, KitHooks, LogCapture, RecordingStores, Run, Watch, instrumented
from .stack import StackClients, open_stack

_NOTHING_ALLOWED = "conformance://no-provider-is-allowed"


class ConformanceFailure(AssertionError):
    """The rotator breaks a rule the engine relies on; the message lists every finding."""


@dataclass(frozen=True)
class Seeded:
    name: str
    version: str
    seed: Seed
    tags: dict[str, str]


class Kit:
    def __init__(self, case: ConformanceCase, stack: StackClients) -> None:
        self.case = case
        self.stack = stack
        self.watch = Watch()
        self.hooks = KitHooks(self.watch)
        # As composition.build_service gives it: the app's identity; locally the stack's CA signs every double.
        context = stack.provider_context()
        context = case.context(context) if case.context else context
        self.rotator: Rotator = case.rotator(context)  # the plain one, for the kit's own reads
        registry = RotatorRegistry(builtins={}, context=context, entry_points=())
        registry.register(instrumented(case.rotator, self.hooks))
        self._registry = registry

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, case: ConformanceCase, env: Mapping[str, str]) -> AsyncIterator[Kit]:
        root = logging.getLogger()
        async with open_stack(env) as stack:
            kit = cls(case, stack)
            capture, level = LogCapture(kit.watch), root.level
            root.addHandler(capture)
            root.setLevel(logging.DEBUG)
            try:
                yield kit
            finally:
                root.removeHandler(capture)
                root.setLevel(level)

    # --- the checks -------------------------------------------------------------------------------------

    async def check_hooks(self) -> None:
        """Each hook idempotent; `generate` changes nothing; `accepts` is a real, side-effect-free login."""
        seeded = await self._seed()
        config = RotationConfig.from_tags(seeded.name, seeded.tags)
        rotator, logs_in = self.rotator, self.case.logs_in
        current = rotator.parse(config.credential_id, seeded.seed.value)
        target = rotator.target_credential_id(config)
        # The provider must be as seeded after these, or the rest would mislead: stop here if not.
        self._finish("hooks", await self._pure_hooks(config, current))
        problems: list[str] = []
        new = Credential(target, rotator.generate(config, target))
        self.watch.remember(new.secret)
        if await rotator.accepts(config, new) or await rotator.accepts(config, new):
            problems.append("accepts says yes to a credential the provider was never given (accepts lies)")
        if rotator.parse(target, rotator.render(new)) != new:
            problems.append("parse(render(credential)) does not give the credential back")
        request = ApplyRequest(config, new, current, seeded.seed.admin)
        new = await _apply(rotator, request) or new
        try:
            new = await _apply(rotator, request) or new  # a provider that issues credentials issues another
        except ProviderRefusedError:
            # A single-credential apply authenticates with the old password, gone after the first
            # apply: the engine never repeats it without asking `accepts`, and refusing is harmless.
            if rotator.pattern is Pattern.DUAL:
                problems.append("a repeated apply of a dual-credential rotator failed")
        self.watch.remember(new.secret)
        if not (await logs_in(new) and await rotator.accepts(config, new)):
            problems.append("after apply (twice) the provider does not accept the new credential")
        wrong = Credential(target, SecretValue(secrets.token_urlsafe(24)))
        self.watch.remember(wrong.secret)
        if await rotator.accepts(config, wrong):
            problems.append("accepts says yes to a wrong password after apply (accepts lies)")
        if rotator.pattern is Pattern.DUAL and not await logs_in(current):
            problems.append("apply changed the credential readers of the current version use")
        self._finish("hooks", problems)

    async def _pure_hooks(self, config: RotationConfig, current: Credential) -> list[str]:
        """validate, scope, accepts and generate, each called twice: same answers, provider unchanged."""
        rotator, logs_in, problems = self.rotator, self.case.logs_in, []
        rotator.validate(config)
        rotator.validate(config)
        if rotator.scope(config) != rotator.scope(config):
            problems.append("scope gives different answers for the same tags")
        if not (await rotator.accepts(config, current) and await rotator.accepts(config, current)):
            problems.append("accepts rejects the credential the provider was set up with")
        target = rotator.target_credential_id(config)
        generated = [rotator.generate(config, target)]
        if await logs_in(Credential(target, generated[0])):
            problems.append("the provider accepts a generated credential that was never applied (applied in generate?)")
        generated.append(rotator.generate(config, target))
        self.watch.remember(*generated)
        if generated[0] == generated[1]:
            problems.append("generate returned the same value twice")
        if not await logs_in(current):
            problems.append("the current credential stopped working when generate was called (applied in generate?)")
        return problems

    async def check_rotation(self) -> None:
        """Pending record before apply, verification before promotion, one new working version."""
        problems: list[str] = []
        seeded = await self._seed()
        outcome, run = await self._rotate(seeded)
        if outcome.status is not Status.ROTATED:
            problems.append(f"rotation ended {outcome.status.value} at {outcome.step}: {outcome.reason}")
        problems += run.violations
        problems += await self._rotated_once(seeded)
        again, _ = await self._rotate(seeded)
        if again.status is not Status.SKIPPED or len(await self._versions(seeded.name)) != 2:
            problems.append(f"the same event again gave {again.status.value} and changed the versions")
        self._finish("rotation", problems)

    async def check_crash_and_resume(self) -> int:
        """A failure before every store and provider call (and after every one that changes something),
        then the same event again: exactly one rotation, no credential lost. Returns the points tried."""
        problems: list[str] = []
        probe = await self._seed()
        clean, run = await self._rotate(probe)
        if clean.status is not Status.ROTATED:
            raise ConformanceFailure(f"crash-and-resume: a clean rotation ended {clean.status.value}: {clean.reason}")
        if "rotator.apply" not in run.calls or not run.writes:
            raise ConformanceFailure(f"crash-and-resume: the clean run showed no apply or no write: {run.calls}")
        points = [Fault(i, "before") for i in range(len(run.calls))] + [Fault(i, "after") for i in sorted(run.writes)]
        for fault in points:
            where = f"failure {fault.when} call {fault.index} ({run.calls[fault.index]})"
            seeded = await self._seed()
            first, crashed = await self._rotate(seeded, fault=fault)
            if first.status is Status.FAILED and not first.retryable:
                problems.append(f"{where}: reported as permanent, so it would never be resumed")
            if crashed.applied and not await self._target_recoverable(seeded):
                problems.append(f"{where}: the provider's new credential is in no Key Vault version (lost)")
            resumed, after = await self._rotate(seeded)
            # SKIPPED is right when the failure came after the rotation finished; `_rotated_once` tells.
            if resumed.status not in (Status.ROTATED, Status.SKIPPED):
                problems.append(f"{where}: resuming ended {resumed.status.value} at {resumed.step}: {resumed.reason}")
            problems += [f"{where}: {v}" for v in crashed.violations + after.violations]
            problems += [f"{where}: {p}" for p in await self._rotated_once(seeded)]
        self._finish("crash and resume", problems)
        return len(points)

    async def check_bad_tags(self) -> int:
        """Unusable tags and out-of-scope providers: one permanent failure, nothing stored or applied."""
        problems: list[str] = []
        changes: list[Mapping[str, str | None]] = [
            {Tag.CREDENTIAL_ID: None},
            {Tag.PROVIDER_ADDRESS: None},
            {Tag.PROVIDER_ADDRESS: "not a provider address"},
            {Tag.VALIDITY_PERIOD_DAYS: "30"},
            {Tag.VALIDITY_PERIOD_DAYS: "soon"},
        ]
        if self.rotator.pattern is Pattern.DUAL:
            changes.append({Tag.ALTERNATE_CREDENTIAL_ID: "<same>"})
            if not _issues_credentials(self.rotator):  # where the provider issues, the other one may be implied
                changes.append({Tag.ALTERNATE_CREDENTIAL_ID: None})
        cases = [(_label(c), c, False) for c in [*changes, *self.case.bad_tags]]
        cases.append(("a ProviderAddress outside ROTATION_ALLOWED_SCOPES", {}, True))
        for label, change, out_of_scope in cases:
            seeded = await self._seed(change)
            outcome, run = await self._rotate(seeded, scopes=(_NOTHING_ALLOWED,) if out_of_scope else None)
            if outcome.status is not Status.FAILED or outcome.retryable:
                problems.append(f"{label}: ended {outcome.status.value} (retryable={outcome.retryable}), not refused")
            if "rotator.apply" in run.calls:
                problems.append(f"{label}: apply was called")
            if len(await self._versions(seeded.name)) != 1 or await self._versions(pending_name(seeded.name)):
                problems.append(f"{label}: something was written to Key Vault")
            original = self.rotator.parse(seeded.seed.tags[Tag.CREDENTIAL_ID], seeded.seed.value)
            if not await self.case.logs_in(original):
                problems.append(f"{label}: the current credential no longer logs in")
        self._finish("bad tags", problems)
        return len(cases)

    def assert_no_leaks(self) -> None:
        """No secret value the kit has seen in a log record, a hook's exception or an outcome event."""
        leaks = self.watch.leaks()
        if leaks:
            raise ConformanceFailure(f"secret values appeared in: {'; '.join(leaks)}")

    # --- helpers ----------------------------------------------------------------------------------------

    def _finish(self, check: str, problems: list[str]) -> None:
        if problems:
            raise ConformanceFailure(f"{check}: {'; '.join(dict.fromkeys(problems))}")
        self.assert_no_leaks()

    async def _seed(self, change: Mapping[str, str | None] | None = None) -> Seeded:
        seed = await self.case.seed()
        self.watch.remember(seed.value, seed.admin.secret if seed.admin else None)
        name = f"conformance-{self.rotator.name}-{uuid.uuid4().hex[:12]}"
        tags = {Tag.ROTATOR_TYPE.value: self.rotator.name, Tag.VALIDITY_PERIOD_DAYS.value: "60", **seed.tags}
        if seed.admin is not None:
            admin_name = f"{name}-admin"
            await self.stack.vault.set_secret(
                admin_name, seed.admin.secret.reveal(), tags={Tag.CREDENTIAL_ID.value: seed.admin.credential_id}
            )
            tags[Tag.ADMIN_SECRET_NAME.value] = admin_name
        for key, value in (change or {}).items():
            if value is None:
                tags.pop(key, None)
            else:
                tags[key] = tags.get(Tag.CREDENTIAL_ID, "") if value == "<same>" else value
        secret = await self.stack.vault.set_secret(
            name, seed.value.reveal(), tags=tags, expires_on=datetime.now(UTC) + timedelta(days=10)
        )
        return Seeded(name, secret.properties.version or "", seed, tags)

    async def _rotate(
        self, seeded: Seeded, *, fault: Fault | None = None, scopes: tuple[str, ...] | None = None
    ) -> tuple[Outcome, Run]:
        allowed = scopes
        target_id = seeded.tags.get(Tag.CREDENTIAL_ID, "")
        with contextlib.suppress(Exception):  # bad tags: the engine must refuse them, not the kit
            config = RotationConfig.from_tags(seeded.name, seeded.tags)
            allowed = allowed or (self.rotator.scope(config),)
            target_id = self.rotator.target_credential_id(config)
        engine = RotationEngine(
            RecordingStores(self.stack.stores, self.hooks),
            self._registry,
            Scopes((self.stack.vault_url,), allowed or (_NOTHING_ALLOWED,)),
            self.stack.lock,
        )
        run = Run(
            seeded.name,
            target_id,
            self.rotator,
            self.case.logs_in,
            pending_exists=bool(await self._versions(pending_name(seeded.name))),
            fault=fault,
        )
        event = SecretEvent(
            str(uuid.uuid4()),
            SecretEventType.NEAR_EXPIRY,
            EventSchema.EVENT_GRID,
            self.stack.vault_url,
            seeded.name,
            seeded.version,
        )
        self.hooks.run = run
        try:
            outcome = await engine.rotate(event)
        finally:
            self.hooks.run = None
        log_outcome(outcome)  # the worker's log line
        self.watch.texts.append(("an outcome event", json.dumps(outcome.fields())))
        return outcome, run

    async def _versions(self, name: str) -> list[tuple[str, bool]]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return [
                (p.version or "", bool(p.enabled))
                async for p in self.stack.vault.list_properties_of_secret_versions(name)
            ]
        except ResourceNotFoundError:
            return []

    async def _stored_values(self, name: str) -> list[SecretValue]:
        values = []
        for version, enabled in await self._versions(name):
            if enabled:
                secret = await self.stack.vault.get_secret(name, version)
                values.append(SecretValue(secret.value or ""))
        self.watch.remember(*values)
        return values

    async def _target_recoverable(self, seeded: Seeded) -> bool:
        """Some value Key Vault holds (the secret or its pending record) logs in as the changed credential.

        Where the provider issues credentials, its answer to a lost `apply` cannot have been stored;
        there it is enough that the current version's credential still works (redelivery issues again).
        """
        config = RotationConfig.from_tags(seeded.name, seeded.tags)
        target = self.rotator.target_credential_id(config)
        for value in await self._stored_values(seeded.name) + await self._stored_values(pending_name(seeded.name)):
            with contextlib.suppress(ConfigurationError):
                if await self.case.logs_in(self.rotator.parse(target, value)):
                    return True
        if _issues_credentials(self.rotator):
            return await self.case.logs_in(self.rotator.parse(config.credential_id, seeded.seed.value))
        return False

    async def _rotated_once(self, seeded: Seeded) -> list[str]:
        """Exactly one new version, tagged for the target credential, that logs in; readers kept (dual)."""
        problems = []
        config = RotationConfig.from_tags(seeded.name, seeded.tags)
        versions = await self._versions(seeded.name)
        if len(versions) != 2:
            problems.append(f"{len(versions)} versions of the secret, not 2 (one rotation)")
        newest = await self.stack.vault.get_secret(seeded.name)
        tags = newest.properties.tags or {}
        target = self.rotator.target_credential_id(config)
        if _issues_credentials(self.rotator):
            target = tags.get(Tag.CREDENTIAL_ID, target)  # the provider may name the credential it issues
        elif tags.get(Tag.CREDENTIAL_ID) != target:
            problems.append(f"the newest version's {Tag.CREDENTIAL_ID} is not {target}")
        value = SecretValue(newest.value or "")
        self.watch.remember(value)
        try:
            works = await self.case.logs_in(self.rotator.parse(target, value))
        except ConfigurationError:
            works = False
        if not works:
            problems.append("the newest version does not log in")
        old = self.rotator.parse(config.credential_id, seeded.seed.value)
        still = await self.case.logs_in(old)
        if self.rotator.pattern is Pattern.DUAL and not still:
            problems.append("the previous credential stopped working (dual credential must keep readers working)")
        # A provider that issues credentials (a new app password) may keep the old one: its own rules.
        if self.rotator.pattern is Pattern.SINGLE and still and not _issues_credentials(self.rotator):
            problems.append("the replaced credential still logs in")
        return problems


def _issues_credentials(rotator: Rotator) -> bool:
    """The provider chooses the new value (a regenerated key, an issued app password)."""
    return bool(getattr(rotator, "issues_credentials", False))


async def _apply(rotator: Rotator, request: ApplyRequest) -> Credential | None:
    """`apply`, and the credential it returns when the provider issued one."""
    applying: Awaitable[object] = rotator.apply(request)
    result = await applying
    return result if isinstance(result, Credential) else None


def _label(change: Mapping[str, str | None]) -> str:
    return ", ".join(f"{key!s} {'removed' if value is None else f'= {value!r}'}" for key, value in change.items())
