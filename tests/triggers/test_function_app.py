"""The registered functions, driven with azure-functions objects built from real event JSON.

The service behind them is built from in-memory fakes here; tests/integration drives the same
functions against the local stack.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

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


def test_the_host_hands_queue_messages_over_unchanged() -> None:
    """The queue extension (5.x, in extension bundle 4.x): "By default messages received from the queue
    are expected to be Base64-encoded and are decoded before calling the function. This behavior can be
    changed by setting MessageEncoding. For example, to configure Azure Functions to perform no base64
    encoding/decoding, specify the following in host.json" `"messageEncoding": "none"`
    (Microsoft.Azure.WebJobs.Extensions.Storage.Queues, QueueTriggerAttribute). With the default a raw
    JSON message would fail before the worker sees it."""
    host_json = json.loads((Path(__file__).resolve().parents[2] / "host.json").read_text())
    assert host_json["extensions"]["queues"]["messageEncoding"] == "none"


@pytest.mark.parametrize("encoding", ["raw JSON", "base64"])
async def test_the_queue_function_rotates_raw_and_base64_messages(fake: FakeService, encoding: str) -> None:
    """Event Grid may write either form into the queue (its documentation does not settle it)."""
    version = await fake.seed()
    text = json.dumps(key_vault_event(VAULT, "db", version))
    body = text if encoding == "raw JSON" else base64.b64encode(text.encode()).decode()
    await HOST.deliver_queue_message(body)
    assert len(fake.store.versions["db"]) == 2 and fake.provider.changes == 1
    assert fake.sink.published[-1].status.value == "SecretRotated"


async def test_expiry_events_of_pending_records_are_acknowledged_in_one_line(
    fake: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    await HOST.deliver_event(key_vault_event(VAULT, "db--rotation-pending", "0" * 32, kind="expired"))
    lines = [r.getMessage() for r in caplog.records if r.name == "secret_rotation"]
    assert len(lines) == 1 and lines[0].startswith("EventIgnored") and "is a pending record" in lines[0], lines
    assert fake.queue.messages == [] and fake.store.calls == [], "acknowledged: nothing read, nothing queued"


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
