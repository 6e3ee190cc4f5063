"""The registered functions, driven with azure-functions objects built from real event JSON.

The service behind them is built from in-memory fakes here; tests/integration drives the same
functions against the local stack.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest

import function_app
from secret_rotation.composition import Service
from secret_rotation.engine import RotationEngine
from secret_rotation.intake import Intake
from secret_rotation.on_demand import OnDemand
from secret_rotation.outcomes import OutcomeReporter
from secret_rotation.registry import RotatorRegistry
from secret_rotation.scopes import Scopes
from secret_rotation.secret_value import SecretValue
from secret_rotation.sweep import Sweep
from secret_rotation.worker import RetryableFailure, RotationWorker
from tests.support.events import key_vault_event
from tests.support.host import app_host, event_grid_input
from tests.unit.conftest import NOW
from tests.unit.fakes import (
    VAULT,
    FakeProvider,
    InMemoryLock,
    InMemoryQueue,
    InMemorySecretStore,
    InMemoryStores,
    RecordingSink,
    rotators_for,
)

HOST = app_host()


class FakeService:
    def __init__(self) -> None:
        self.provider = FakeProvider()
        self.store = InMemorySecretStore()
        self.queue = InMemoryQueue()
        self.sink = RecordingSink()
        registry = RotatorRegistry(builtins={})
        for rotator in rotators_for(self.provider):
            registry.register(rotator)
        scopes = Scopes((VAULT,), ("fake://provider",))
        stores = InMemoryStores(self.store)
        engine = RotationEngine(stores, registry, scopes, InMemoryLock())
        reporter = OutcomeReporter(self.sink)
        self.service = Service(
            intake=Intake(stores, scopes, self.queue, reporter),
            worker=RotationWorker(engine, reporter),
            sweep=Sweep(stores, (VAULT,), self.queue, stuck_after=timedelta(hours=1), clock=lambda: NOW),
            on_demand=OnDemand(stores, scopes, self.queue, reporter),
        )

    async def seed(self) -> str:
        self.provider.passwords["app"] = "old-password"
        stored = await self.store.set(
            "db",
            SecretValue("old-password"),
            tags={
                "RotatorType": "fake-single",
                "CredentialId": "app",
                "ProviderAddress": "fake://provider/db",
                "ValidityPeriodDays": "45",
            },
            expires_on=NOW + timedelta(days=3),
        )
        return stored.version


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeService]:
    fake = FakeService()
    monkeypatch.setattr(function_app, "_service", fake.service)
    yield fake


def test_app_indexes_the_expected_bindings() -> None:
    bindings = {name: [(b.type, b.name) for b in fn.get_bindings()] for name, fn in HOST.functions.items()}
    assert bindings == {
        "on_secret_near_expiry": [("eventGridTrigger", "event")],
        "rotation_worker": [("queueTrigger", "message")],
        "sweep_due_secrets": [("timerTrigger", "timer")],
        "rotate_now": [("httpTrigger", "req"), ("http", "$return")],
    }
    timer = HOST.functions["sweep_due_secrets"].get_trigger().get_dict_repr()
    assert timer["schedule"] == "%ROTATION_SWEEP_SCHEDULE%"
    trigger = HOST.functions["rotation_worker"].get_trigger().get_dict_repr()
    assert trigger["queueName"] == "%ROTATION_QUEUE_NAME%" and trigger["connection"] == "AzureWebJobsStorage"


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
def test_event_payload_round_trips_the_schema_it_arrived_in(schema: str) -> None:
    original = key_vault_event(VAULT, "db", "v1", schema=schema)
    rebuilt = function_app.event_payload(event_grid_input(original))
    assert rebuilt["id"] == original["id"] and rebuilt["data"] == original["data"]
    assert ("specversion" in rebuilt) == (schema == "cloudevents")
    assert ("eventType" in rebuilt) == (schema == "eventgrid")


@pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
async def test_event_grid_trigger_enqueues_and_queue_trigger_rotates(fake: FakeService, schema: str) -> None:
    version = await fake.seed()
    await HOST.deliver_event(key_vault_event(VAULT, "db", version, schema=schema))
    assert len(fake.queue.messages) == 1
    queued = json.loads(fake.queue.messages[0])
    assert ("specversion" in queued) == (schema == "cloudevents"), "the queue holds the event as delivered"

    await HOST.deliver_queue_message(fake.queue.messages[0])
    assert len(fake.store.versions["db"]) == 2 and fake.provider.changes == 1


async def test_stale_and_ignored_events_are_not_enqueued(fake: FakeService) -> None:
    await fake.seed()
    await HOST.deliver_event(key_vault_event(VAULT, "db", "0" * 32))
    await HOST.deliver_event(key_vault_event(VAULT, "db", "0" * 32, kind="new_version"))
    assert fake.queue.messages == []


async def test_queue_trigger_raises_only_for_retryable_failures(fake: FakeService) -> None:
    version = await fake.seed()
    await HOST.deliver_queue_message("{not json")  # permanent: completes the message
    fake.store.fail_at_call = len(fake.store.calls)
    with pytest.raises(RetryableFailure):
        await HOST.deliver_queue_message(json.dumps(key_vault_event(VAULT, "db", version)))
    await HOST.deliver_queue_message(json.dumps(key_vault_event(VAULT, "db", version)))
    assert fake.provider.changes == 1


def test_every_binding_expression_is_a_setting_of_the_app_and_of_local_settings() -> None:
    import re
    from pathlib import Path

    from secret_rotation.settings import APP_SETTING_NAMES

    expressions = {
        name
        for fn in HOST.functions.values()
        for value in fn.get_trigger().get_dict_repr().values()
        if isinstance(value, str)
        for name in re.findall(r"%([A-Za-z0-9_]+)%", value)
    }
    sample = json.loads((Path(__file__).resolve().parents[2] / "local.settings.sample.json").read_text())
    assert expressions == {"ROTATION_QUEUE_NAME", "ROTATION_SWEEP_SCHEDULE"}
    assert expressions <= set(APP_SETTING_NAMES) and expressions <= set(sample["Values"])


async def test_queue_trigger_passes_the_dequeue_count_and_timer_runs_the_sweep(fake: FakeService) -> None:
    version = await fake.seed()
    await HOST.deliver_queue_message(json.dumps(key_vault_event(VAULT, "db", version)), dequeue_count=3)
    assert fake.sink.published[-1].attempt == 3
    fake.store.versions["db"][-1] = replace(fake.store.versions["db"][-1], expires_on=NOW + timedelta(days=1))
    sweep = HOST.functions["sweep_due_secrets"].get_user_function()
    await sweep(None)
    assert [json.loads(m)["subject"] for m in fake.queue.messages] == ["db"]
