"""The protocol against in-memory ports: outcomes, idempotency, resumption, rejections."""

from __future__ import annotations

from datetime import timedelta

import pytest

from secret_rotation.outcomes import Status
from secret_rotation.pending import pending_name
from secret_rotation.rotator import Credential
from secret_rotation.secret_value import SecretValue
from tests.unit.conftest import NOW, World


async def test_single_rotation_writes_a_verified_new_version(world: World) -> None:
    base = await world.seed_single()
    outcome = await world.engine.rotate(world.event("db", base))

    assert outcome.status is Status.ROTATED, outcome
    versions = world.store.versions["db"]
    assert len(versions) == 2 and outcome.to_version == versions[-1].version
    newest = versions[-1]
    assert world.provider.accepts(Credential("app", newest.value))
    assert not world.provider.accepts(Credential("app", SecretValue("old-password-1")))
    assert newest.expires_on == NOW + timedelta(days=60)
    assert newest.tags["RotatorType"] == "fake-single" and newest.tags["CredentialId"] == "app"
    assert newest.tags["RotatedFromVersion"] == base
    pending = world.store.versions[pending_name("db")]
    assert len(pending) == 1, "one pending version per rotation: closed by an update, no tombstone"
    assert pending[0].tags["RotationStep"] == "completed" and not pending[0].enabled
    assert pending[0].expires_on == NOW + timedelta(days=60), "everything written to the record expires"
    creates = [name for op, name in world.store.calls if op == "set"]
    assert creates == ["db", pending_name("db"), "db"], "seed, then the two CREATEs of the protocol"


async def test_dual_rotation_changes_only_the_inactive_credential(world: World) -> None:
    base = await world.seed_dual()
    outcome = await world.engine.rotate(world.event("dual", base))

    assert outcome.status is Status.ROTATED, outcome
    newest = world.store.versions["dual"][-1]
    assert newest.tags["CredentialId"] == "green" and newest.tags["AlternateCredentialId"] == "blue"
    assert world.provider.accepts(Credential("green", newest.value))
    assert world.provider.accepts(Credential("blue", SecretValue("blue-password-1"))), "readers keep working"


async def test_duplicate_and_older_events_rotate_nothing_more(world: World) -> None:
    base = await world.seed_single()
    event = world.event("db", base)
    assert (await world.engine.rotate(event)).status is Status.ROTATED
    again = await world.engine.rotate(event)
    assert again.status is Status.SKIPPED and "already rotated" in (again.reason or "")
    second = world.store.versions["db"][-1].version
    older = await world.engine.rotate(world.event("db", base))
    assert older.status is Status.SKIPPED
    assert world.provider.changes == 1 and world.store.versions["db"][-1].version == second


@pytest.mark.parametrize("expires_in", [31, 45, 400])
async def test_secret_not_near_expiry_is_skipped(world: World, expires_in: int) -> None:
    base = await world.seed_single(expires_in=expires_in)
    outcome = await world.engine.rotate(world.event("db", base))
    assert outcome.status is Status.SKIPPED and "not due" in (outcome.reason or "")
    assert pending_name("db") not in world.store.versions


@pytest.mark.parametrize(
    ("tags", "reason"),
    [
        ({"ValidityPeriodDays": "30"}, "ValidityPeriodDays=30 must be more than 30"),
        ({"ValidityPeriodDays": "thirty"}, "whole number of days"),
        ({"RotatorType": "no-such-rotator"}, "unknown rotator 'no-such-rotator'"),
        ({"RotatorType": ""}, "has no RotatorType tag"),
        ({"ProviderAddress": "fake://elsewhere/db"}, "outside ROTATION_ALLOWED_SCOPES"),
        ({"ProviderAddress": "fake://provider-evil/db"}, "outside ROTATION_ALLOWED_SCOPES"),
    ],
)
async def test_configurations_that_cannot_work_fail_permanently_and_write_nothing(
    world: World, tags: dict[str, str], reason: str
) -> None:
    base = await world.seed_single(tags=tags)
    outcome = await world.engine.rotate(world.event("db", base))
    assert outcome.status is Status.FAILED and not outcome.retryable
    assert reason in (outcome.reason or ""), outcome.reason
    assert [op for op, _ in world.store.calls if op in ("set", "update")] == ["set"], "only the seeding write"
    assert world.provider.changes == 0


async def test_vault_outside_allow_list_is_rejected_before_any_read(world: World) -> None:
    base = await world.seed_single()
    calls_before = len(world.store.calls)
    outcome = await world.engine.rotate(world.event("db", base, vault="https://other.vault.azure.net"))
    assert outcome.status is Status.FAILED and "ROTATION_ALLOWED_VAULTS" in (outcome.reason or "")
    assert len(world.store.calls) == calls_before


async def test_provider_refusal_keeps_the_pending_credential_and_never_shows_it(world: World) -> None:
    base = await world.seed_single()
    world.provider.refuse_changes = True
    outcome = await world.engine.rotate(world.event("db", base))
    pending = world.store.versions[pending_name("db")][-1]

    assert outcome.status is Status.FAILED and outcome.step == "apply" and not outcome.retryable
    assert pending.value.reveal() not in repr(outcome) and "***" in (outcome.reason or "")
    assert pending.tags["RotationStep"] == "created"

    world.provider.refuse_changes = False
    resumed = await world.engine.rotate(world.event("db", base))
    assert resumed.status is Status.ROTATED
    assert world.store.versions["db"][-1].value == pending.value, "the stored pending credential was used"


async def test_a_version_written_outside_a_pending_rotation_is_a_conflict(world: World) -> None:
    base = await world.seed_single()
    world.provider.refuse_changes = True
    await world.engine.rotate(world.event("db", base))
    manual = await world.store.set("db", SecretValue("typed-by-a-human"), tags={})
    outcome = await world.engine.rotate(world.event("db", manual.version))
    assert outcome.status is Status.FAILED and "outside rotation" in (outcome.reason or "")


@pytest.mark.parametrize("pattern", ["single", "dual"])
async def test_a_fault_at_any_store_call_resumes_to_exactly_one_rotation(pattern: str) -> None:
    probe = World()
    name, version = await probe.seed(pattern)
    start = len(probe.store.calls)
    assert (await probe.engine.rotate(probe.event(name, version))).status is Status.ROTATED
    steps = probe.store.calls[start:]
    assert len(steps) >= 8

    for index, step in enumerate(steps):
        world = World()
        name, version = await world.seed(pattern)
        world.store.fail_at_call = len(world.store.calls) + index
        event = world.event(name, version)
        first = await world.engine.rotate(event)
        # Every step, closing the record included, is resumable: a fault fails retryably, then resumes.
        assert first.status is Status.FAILED and first.retryable, (step, first)
        second = await world.engine.rotate(event)
        assert second.status is Status.ROTATED, (step, second)
        pending = world.store.versions[pending_name(name)]
        assert [(p.enabled, p.tags["RotationStep"]) for p in pending] == [(False, "completed")], step
        newest = world.store.versions[name][-1]
        assert world.provider.accepts(Credential(newest.tags["CredentialId"], newest.value)), step
        assert len(world.store.versions[name]) == 2, step
        assert world.provider.changes == 1, step
