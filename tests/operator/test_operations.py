"""Operator operations on the in-memory ports (fast): what `plan` and `status` say about an open rotation,
and what `rollback` refuses before it writes anything."""

from __future__ import annotations

from datetime import timedelta

import pytest

from secret_rotation.operations.plan import plan_vault
from secret_rotation.operations.rollback import Rollback, RollbackRefused
from secret_rotation.operations.rotate_now import rotate_once
from secret_rotation.operations.status import secret_status
from secret_rotation.outcomes import OutcomeReporter, Status
from tests.unit.conftest import NOW, World
from tests.unit.fakes import VAULT, InMemoryStores, RecordingSink


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def reporter() -> OutcomeReporter:
    return OutcomeReporter(RecordingSink())


async def test_plan_and_status_show_an_open_rotation_at_its_step(world: World, reporter: OutcomeReporter) -> None:
    await world.seed_single("db")
    world.provider.refuse_changes = True  # the rotation stops at apply, its pending record open at `created`
    outcome = await rotate_once(world.engine, reporter, VAULT, "db")
    assert (outcome.status, outcome.step) == (Status.FAILED, "apply")

    plan = await plan_vault(world.store, world.registry, world.scopes, clock=lambda: NOW)
    assert [(e.name, e.when, e.problems) for e in plan.entries] == [("db", "in progress (created)", ())]
    assert plan.untagged == () and plan.ok, "the pending record is shown through its secret, not as one"

    status = await secret_status(world.store, "db", stuck_after=timedelta(hours=1))
    assert status.pending is not None and status.pending.step == "created"
    assert "in progress at step created" in status.last_outcome
    assert [row.origin for row in status.history] == ["outside the service"]


async def test_rollback_refuses_before_writing(world: World, reporter: OutcomeReporter) -> None:
    rollback = Rollback(InMemoryStores(world.store), world.registry, world.scopes, world.lock, reporter)
    await world.seed_single("db")
    with pytest.raises(RollbackRefused, match="single-credential"):
        await rollback.run(VAULT, "db")

    await world.seed_dual("dual")
    with pytest.raises(RollbackRefused, match="not written by a rotation"):
        await rollback.run(VAULT, "dual")
    assert (await rotate_once(world.engine, reporter, VAULT, "dual")).status is Status.ROTATED
    world.provider.passwords["blue"] = "changed-behind-our-back"  # the previous credential no longer logs in
    versions = len(world.store.versions["dual"])
    with pytest.raises(RollbackRefused, match="no longer accepts"):
        await rollback.run(VAULT, "dual")
    assert len(world.store.versions["dual"]) == versions, "nothing written without a working login"


async def test_plan_reports_plugins_that_cannot_load_or_are_not_allowed(world: World) -> None:
    from importlib import metadata

    from secret_rotation.registry import ENTRY_POINT_GROUP, RotatorRegistry

    registry = RotatorRegistry(
        builtins={},
        allowed_plugins={"broken-plugin"},
        entry_points=[
            metadata.EntryPoint(name="broken-plugin", value="no_such_module:Rotator", group=ENTRY_POINT_GROUP),
            metadata.EntryPoint(name="other-plugin", value="no_such_module:Other", group=ENTRY_POINT_GROUP),
        ],
    )
    await world.seed_single("db", tags={"RotatorType": "other-plugin"})

    plan = await plan_vault(world.store, registry, world.scopes, clock=lambda: NOW)
    assert not plan.ok
    assert len(plan.plugin_problems) == 1 and "'broken-plugin'" in plan.plugin_problems[0]
    assert "failed to load" in plan.plugin_problems[0]
    assert plan.plugins_not_allowed == ("other-plugin (an unknown package)",)
    (entry,) = plan.entries
    assert any("installed" in problem and "not allowed" in problem for problem in entry.problems), entry.problems


async def test_status_orders_versions_of_one_second_by_what_they_were_rotated_from(world: World) -> None:
    from secret_rotation.ports import StoredSecret
    from secret_rotation.secret_value import SecretValue

    # Key Vault lists by version id and `created` has one-second resolution: here the rotation's id sorts first.
    world.store.versions["s"] = [
        StoredSecret("s", "b-original", SecretValue("old-value-1"), {}),
        StoredSecret(
            "s", "a-rotated", SecretValue("new-value-1"), {"RotationId": "r1", "RotatedFromVersion": "b-original"}
        ),
    ]
    status = await secret_status(world.store, "s", stuck_after=timedelta(hours=1))
    assert [row.version for row in status.history] == ["b-original", "a-rotated"]
    assert status.last_outcome.startswith("rotation r1 completed")
