"""The sweep's choice of due secrets, the lock's deferral, outcome publishing and dead-letter replay
parsing, against in-memory ports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from secret_rotation.errors import TransientError
from secret_rotation.events import SecretEvent, parse_event
from secret_rotation.outcomes import Status
from secret_rotation.pending import PendingRecords
from secret_rotation.ports import SecretSummary
from secret_rotation.replay import original_events
from secret_rotation.rotator import Credential
from secret_rotation.secret_value import SecretValue
from secret_rotation.sweep import Sweep, unique_vaults
from tests.support.events import fixture
from tests.unit.conftest import NOW, World
from tests.unit.fakes import VAULT, InMemoryQueue, InMemorySecretStore, InMemoryStores


async def test_sweep_enqueues_exactly_the_due_and_stuck_secrets(world: World) -> None:
    store = world.store
    tagged = {"RotatorType": "fake-single", "CredentialId": "app", "ProviderAddress": "fake://provider/x"}
    await store.set("due", SecretValue("v"), tags=tagged, expires_on=NOW + timedelta(days=29))
    await store.set("expired", SecretValue("v"), tags=tagged, expires_on=NOW - timedelta(days=1))
    await store.set("not-due", SecretValue("v"), tags=tagged, expires_on=NOW + timedelta(days=31))
    await store.set("no-expiry", SecretValue("v"), tags=tagged)
    await store.set("untagged", SecretValue("v"), tags={}, expires_on=NOW + timedelta(days=1))
    disabled = await store.set("disabled", SecretValue("v"), tags=tagged, expires_on=NOW + timedelta(days=1))
    await store.update("disabled", disabled.version, enabled=False)
    # Three secrets not due themselves, with pending records: one two hours old (stuck), one fresh (in
    # flight), one two hours old but closed (finished: completed and disabled).
    for name, age in (("stuck", timedelta(hours=2)), ("in-flight", timedelta(minutes=5)), ("done", timedelta(hours=2))):
        store.now = NOW - age
        base = await store.set(name, SecretValue("v"), tags=tagged, expires_on=NOW + timedelta(days=200))
        records = PendingRecords(store)
        record = await records.create(
            name,
            rotation_id="r",
            base_version=base.version,
            credential=Credential("app", SecretValue("n")),
            value=SecretValue("n"),
            content_type=None,
            expires_on=NOW + timedelta(days=200),
            state=await records.load(name),
        )
        if name == "done":
            await records.complete(record)
    store.now = None
    calls_before = len(store.calls)
    queue = InMemoryQueue()

    sweep = Sweep(InMemoryStores(store), (VAULT,), queue, stuck_after=timedelta(minutes=60), clock=lambda: NOW)
    report = await sweep.run()

    found = {(d.name, d.reason) for d in report.enqueued}
    assert found == {("due", "near-expiry"), ("expired", "expired"), ("stuck", "stuck")}
    events = [json.loads(m) for m in queue.messages]
    assert {e["subject"] for e in events} == {"due", "expired", "stuck"}
    expired = next(e for e in events if e["subject"] == "expired")
    assert expired["eventType"] == "Microsoft.KeyVault.SecretExpired"
    # No version: the worker resolves the current one under the lock.
    assert expired["data"]["Version"] is None and expired["data"]["Id"] == f"{VAULT}/secrets/expired"
    assert all(isinstance(parse_event(e), SecretEvent) for e in events), "the jobs parse as events"
    assert report.listed == len(store.versions)
    assert [op for op, _ in store.calls[calls_before:]] == ["list"], "one listing: no values, no version listings"


def test_a_vault_reachable_under_several_urls_is_one_vault() -> None:
    urls = (
        "https://kv-app.vault.azure.net",
        "https://KV-APP.vault.azure.net:443/",
        "https://kv-app.privatelink.vaultcore.azure.net",
        "https://kv-other.vault.azure.net",
        "https://127.0.0.1:8443",
        "https://localhost:8443",
    )
    assert unique_vaults(urls) == [urls[0], urls[3], urls[4], urls[5]]


async def test_sweep_scans_a_vault_listed_under_several_urls_once(world: World) -> None:
    vaults = (VAULT, VAULT.upper() + "/", VAULT + ":443")
    sweep = Sweep(InMemoryStores(world.store), vaults, InMemoryQueue(), stuck_after=timedelta(hours=1))
    await sweep.run()
    assert [op for op, _ in world.store.calls] == ["list"]


async def test_a_held_lock_defers_the_rotation(world: World) -> None:
    version = await world.seed_single()
    world.lock.held.add((VAULT, "db"))
    outcome = await world.engine.rotate(world.event("db", version))
    assert outcome.status is Status.DEFERRED and outcome.retryable
    assert len(world.store.versions["db"]) == 1


def test_dead_letter_blobs_give_back_the_original_events() -> None:
    event = fixture("eventgrid")
    blob = json.dumps([{**event, "deadLetterReason": "MaxDeliveryAttemptsExceeded", "deliveryAttempts": 30}])
    assert original_events(blob) == [event]


async def test_a_failed_enqueue_does_not_stop_the_others_and_fails_the_sweep(world: World) -> None:
    tagged = {"RotatorType": "fake-single", "CredentialId": "app", "ProviderAddress": "fake://provider/x"}
    for name in ("a", "b", "c"):
        await world.store.set(name, SecretValue("v"), tags=tagged, expires_on=NOW + timedelta(days=1))

    class FlakyQueue(InMemoryQueue):
        async def enqueue(self, body: str) -> None:
            if json.loads(body)["subject"] == "b":
                raise TransientError("could not enqueue")
            await super().enqueue(body)

    queue = FlakyQueue()
    sweep = Sweep(InMemoryStores(world.store), (VAULT,), queue, stuck_after=timedelta(hours=1), clock=lambda: NOW)
    with pytest.raises(TransientError):
        await sweep.run()
    assert sorted(json.loads(m)["subject"] for m in queue.messages) == ["a", "c"]


async def test_a_stuck_secret_also_due_for_expiry_gets_one_job_whichever_the_listing_shows_first(world: World) -> None:
    """Jobs go out while the listing goes on; a stuck record's job waits for its vault's end, so a secret both
    stuck and near expiry is sent once, as near expiry, even when its pending record is listed first."""

    class ReversedListing(InMemorySecretStore):
        async def list_secrets(self) -> AsyncIterator[SecretSummary]:
            listed = [summary async for summary in super().list_secrets()]
            for summary in reversed(listed):
                yield summary

    store = ReversedListing()
    tagged = {"RotatorType": "fake-single", "CredentialId": "app", "ProviderAddress": "fake://provider/x"}
    store.now = NOW - timedelta(hours=2)
    base = await store.set("both", SecretValue("v"), tags=tagged, expires_on=NOW + timedelta(days=3))
    records = PendingRecords(store)
    await records.create(
        "both",
        rotation_id="r",
        base_version=base.version,
        credential=Credential("app", SecretValue("n")),
        value=SecretValue("n"),
        content_type=None,
        expires_on=NOW + timedelta(days=90),
        state=await records.load("both"),
    )
    store.now = None
    queue = InMemoryQueue()
    sweep = Sweep(InMemoryStores(store), (VAULT,), queue, stuck_after=timedelta(hours=1), clock=lambda: NOW)
    report = await sweep.run()
    assert [(d.name, d.reason) for d in report.enqueued] == [("both", "near-expiry")]
    assert [json.loads(m)["eventType"] for m in queue.messages] == ["Microsoft.KeyVault.SecretNearExpiry"]
