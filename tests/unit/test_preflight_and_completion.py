"""Preflight (before the pending record) and completion (closing it) against in-memory ports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from secret_rotation import preflight
from secret_rotation.outcomes import Status
from secret_rotation.pending import PendingRecords, Step, pending_name, pending_tags
from secret_rotation.rotator import Credential
from secret_rotation.secret_value import SecretValue
from tests.unit.conftest import NOW, SCOPE, World

ROTATION_TAGS = 4  # RotatorType, CredentialId, ProviderAddress, ValidityPeriodDays (seed_single)


def _extra(count: int) -> dict[str, str]:
    return {f"Team{index}": "x" for index in range(count)}


@pytest.mark.parametrize(("own_tags", "rotates"), [(13, True), (14, False)])
async def test_the_tag_budget_is_checked_before_anything_is_written(world: World, own_tags: int, rotates: bool) -> None:
    base = await world.seed_single(tags=_extra(own_tags - ROTATION_TAGS))
    writes_before = [c for c in world.store.calls if c[0] in ("set", "update")]

    outcome = await world.engine.rotate(world.event("db", base))

    if rotates:
        assert outcome.status is Status.ROTATED, outcome
        assert len(world.store.versions["db"][-1].tags) == preflight.MAX_TAGS
        return
    assert outcome.status is Status.FAILED and not outcome.retryable and outcome.step == "preflight", outcome
    assert "16 tags, Key Vault allows 15" in (outcome.reason or "") and "at most 13" in (outcome.reason or "")
    assert [c for c in world.store.calls if c[0] in ("set", "update")] == writes_before, "no write at all"
    assert world.provider.changes == 0 and world.provider.passwords["app"] == "old-password-1"


async def test_a_second_rotation_reuses_the_bookkeeping_tags_instead_of_adding_more(world: World) -> None:
    base = await world.seed_single(tags=_extra(13 - ROTATION_TAGS))
    assert (await world.engine.rotate(world.event("db", base))).status is Status.ROTATED
    world.clock_days(50)
    second = world.store.versions["db"][-1].version
    outcome = await world.engine.rotate(world.event("db", second))
    assert outcome.status is Status.ROTATED, outcome
    assert len(world.store.versions["db"][-1].tags) == preflight.MAX_TAGS


def test_long_tag_values_and_names_are_problems() -> None:
    found = preflight.tag_problems("x", {"a" * 257: "v", "b": "v" * 257, "c": "v" * 256})
    assert len(found) == 2 and "longer than 256" in found[0] and "'b'" in found[1]


async def test_an_identity_that_may_not_write_the_secret_is_refused_at_preflight(world: World) -> None:
    base = await world.seed_single()
    world.store.read_only.add("db")
    outcome = await world.engine.rotate(world.event("db", base))
    assert outcome.status is Status.FAILED and not outcome.retryable and outcome.step == "preflight", outcome
    assert "may not write secret db" in (outcome.reason or "")
    assert pending_name("db") not in world.store.versions, "no pending record"
    assert world.provider.changes == 0


async def test_a_pending_record_that_may_not_be_updated_is_refused_before_apply(world: World) -> None:
    """May write the secret and create its record (setSecret), but not update the record: the steps after
    apply would fail, so the provider must not change. The record stays open, and resumes once fixed."""
    base = await world.seed_single()
    world.store.no_update.add(pending_name("db"))
    refused = await world.engine.rotate(world.event("db", base))
    assert refused.status is Status.FAILED and not refused.retryable and refused.step == "preflight", refused
    assert "needed to advance and close the record" in (refused.reason or "")
    assert world.provider.changes == 0 and world.provider.passwords["app"] == "old-password-1"

    world.store.no_update.clear()
    resumed = await world.engine.rotate(world.event("db", base))
    assert resumed.status is Status.ROTATED, resumed
    assert world.provider.changes == 1 and len(world.store.versions[pending_name("db")]) == 1


async def test_the_pure_checks_need_no_store(world: World) -> None:
    """What the operator's `plan` calls: configuration and limits from tags alone."""
    tags = {
        "RotatorType": "fake-single",
        "CredentialId": "app",
        "ProviderAddress": f"{SCOPE}/db1",
        "ValidityPeriodDays": "60",
        **_extra(10),
    }
    config, rotator = preflight.configure("db", tags, world.registry, world.scopes)
    assert preflight.problems("db", tags, config, rotator) == [
        "secret db's promoted version would carry 16 tags, "
        "Key Vault allows 15 (a rotated secret may carry at "
        "most 13 tags of its own, it has 14)"
    ]
    assert world.store.calls[-1:] == [], "no store call"


async def test_a_pending_record_is_written_once_and_closed_by_one_update(world: World) -> None:
    base = await world.seed_single()
    start = len(world.store.calls)
    assert (await world.engine.rotate(world.event("db", base))).status is Status.ROTATED
    record_calls = [op for op, name in world.store.calls[start:] if name == pending_name("db")]
    # state, CREATE, read back once (before apply: apply, verify and promote all use Key Vault's copy),
    # no-op update (may the record be updated?), applied, close.
    assert record_calls == ["list_versions", "set", "get", "update", "update", "update"]
    assert [op for op, name in world.store.calls[start:] if name == "db"] == ["get", "update", "set", "get"]
    assert world.provider.logins == 3, "apply's own login, verify, finish: no pre-apply login"


async def test_a_legacy_tombstone_leaves_nothing_enabled_after_the_next_run(world: World) -> None:
    """A record closed by the previous protocol (tombstone version, credential version left enabled by
    a crash between the two) reads as finished, and its enabled version is disabled on the next run."""
    base = await world.seed_single()
    name = pending_name("db")
    tags = pending_tags("db", "old", "v0", "app", Step.VERIFIED)
    left = await world.store.set(name, SecretValue("old-password-1"), tags=tags)
    await world.store.set(name, SecretValue("rotation-completed"), tags={**tags, "RotationStep": "completed"})

    outcome = await world.engine.rotate(world.event("db", base))

    assert outcome.status is Status.ROTATED, outcome
    versions = {v.version: v for v in world.store.versions[name]}
    assert not versions[left.version].enabled
    assert [v.enabled for v in world.store.versions[name] if v.tags["RotationStep"] != "completed"] == [False]


async def test_duplicate_pending_versions_are_all_closed(world: World) -> None:
    """A lost answer made the transport resend the CREATE: two versions of one rotation, one credential."""
    base = await world.seed_single()
    records = PendingRecords(world.store)
    credential = Credential("app", SecretValue("dup-password"))
    tags = pending_tags("db", "r1", base, "app", Step.CREATED)
    for _ in range(2):
        await world.store.set(pending_name("db"), credential.secret, tags=tags, expires_on=NOW + timedelta(days=60))
    state = await records.load("db")
    assert state.record is not None and len(state.record.versions) == 2

    outcome = await world.engine.rotate(world.event("db", base))

    assert outcome.status is Status.ROTATED, outcome
    assert world.store.versions["db"][-1].value.reveal() == "dup-password"
    assert [v.enabled for v in world.store.versions[pending_name("db")]] == [False, False]
    assert (await records.load("db")).record is None


async def test_open_versions_of_two_rotations_are_a_conflict(world: World) -> None:
    base = await world.seed_single()
    for rotation in ("r1", "r2"):
        await world.store.set(
            pending_name("db"), SecretValue("p"), tags=pending_tags("db", rotation, base, "app", Step.CREATED)
        )
    outcome = await world.engine.rotate(world.event("db", base))
    assert outcome.status is Status.FAILED and "several rotations" in (outcome.reason or "")
    assert world.provider.changes == 0


async def test_a_sweep_job_rotates_whatever_version_is_current(world: World) -> None:
    await world.seed_single()
    newer = await world.store.set(
        "db", SecretValue("old-password-1"), tags=world.store.versions["db"][-1].tags, expires_on=NOW
    )
    outcome = await world.engine.rotate(world.event("db", None))
    assert outcome.status is Status.ROTATED and outcome.from_version == newer.version, outcome
    assert world.store.versions["db"][-1].tags["RotatedFromVersion"] == newer.version


async def test_a_record_left_verified_by_an_earlier_version_is_promoted_and_closed(world: World) -> None:
    base = await world.seed_single()
    world.provider.passwords["app"] = "applied-before-the-upgrade"
    tags = pending_tags("db", "r-old", base, "app", Step.VERIFIED)
    await world.store.set(pending_name("db"), SecretValue("applied-before-the-upgrade"), tags=tags)

    outcome = await world.engine.rotate(world.event("db", base))

    assert outcome.status is Status.ROTATED, outcome
    assert world.store.versions["db"][-1].value.reveal() == "applied-before-the-upgrade"
    assert world.provider.changes == 0, "already applied: promoted, not changed again"
    assert [(v.enabled, v.tags["RotationStep"]) for v in world.store.versions[pending_name("db")]] == [
        (False, "completed")
    ]
