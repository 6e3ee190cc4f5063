"""Engine support for the management-API rotators, against in-memory ports: provider-issued credentials
(docs/protocol.md: the provider chooses the value and its id during `apply`; the engine records both in
the pending record before verifying, promotes the provider's id as `CredentialId`, and never asks the
provider about the placeholder), and the sweep finding secrets tagged like Microsoft's tutorials."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import ClassVar

from secret_rotation.engine import RotationEngine
from secret_rotation.outcomes import Status
from secret_rotation.pending import pending_name
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import ApplyRequest, Credential, DualCredentialRotator, Rotator
from secret_rotation.scopes import Scopes
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.unit.conftest import NOW, SCOPE, World
from tests.unit.fakes import VAULT, InMemoryStores


class IssuingRotator(DualCredentialRotator):
    """Like Graph's addPassword: each apply issues a new secret under a new id."""

    name = "fake-issuing"
    issues_credentials = True
    issued: ClassVar[dict[str, str]] = {}
    asked: ClassVar[list[str]] = []

    def scope(self, config: RotationConfig) -> str:
        return config.provider_address

    def validate(self, config: RotationConfig) -> None:
        Rotator.validate(self, config)

    def target_credential_id(self, config: RotationConfig) -> str:
        return "to-be-issued"

    def next_tags(self, config: RotationConfig) -> dict[str, str]:
        return {"AlternateCredentialId": config.credential_id}

    async def apply(self, request: ApplyRequest) -> Credential:
        key_id, secret = f"key-{len(self.issued)}", secrets.token_urlsafe(16)
        self.issued[key_id] = secret
        return Credential(key_id, SecretValue(secret))

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        self.asked.append(credential.credential_id)
        return self.issued.get(credential.credential_id) == credential.secret.reveal()


async def test_the_issued_credential_and_its_id_are_recorded_before_verification_and_promoted(world: World) -> None:
    IssuingRotator.issued, IssuingRotator.asked = {"key-first": "first"}, []
    registry = RotatorRegistry(builtins={})
    registry.register(IssuingRotator)
    engine = RotationEngine(
        InMemoryStores(world.store), registry, Scopes((VAULT,), (SCOPE,)), world.lock, clock=lambda: NOW
    )
    tags = {
        "RotatorType": "fake-issuing",
        "CredentialId": "key-first",
        "ProviderAddress": f"{SCOPE}/app",
        "ValidityPeriodDays": "60",
    }
    base = await world.store.set("app", SecretValue("first"), tags=tags, expires_on=NOW + timedelta(days=10))

    outcome = await engine.rotate(world.event("app", base.version))

    assert outcome.status is Status.ROTATED, outcome
    newest = world.store.versions["app"][-1]
    assert newest.tags["CredentialId"] == "key-1" and newest.tags["AlternateCredentialId"] == "key-first"
    assert newest.value.reveal() == IssuingRotator.issued["key-1"]
    pending = world.store.versions[pending_name("app")]
    # The placeholder version and the issued one (a second CREATE, written `applied`), both closed.
    assert [(v.tags["RotationStep"], v.enabled) for v in pending] == [("completed", False)] * 2
    assert pending[1].value.reveal() == newest.value.reveal() and pending[1].tags["CredentialId"] == "key-1"
    assert pending[0].value.reveal() != newest.value.reveal()
    assert "to-be-issued" not in IssuingRotator.asked, "the placeholder is never put to the provider"


async def test_the_sweep_finds_a_due_secret_tagged_like_microsofts_tutorial(world: World) -> None:
    from secret_rotation.sweep import Sweep
    from tests.unit.fakes import InMemoryQueue

    account = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a"
    tutorial = {"CredentialId": "key1", "ProviderAddress": account, "ValidityPeriodDays": "60"}
    await world.store.set("storage-key", SecretValue("k"), tags=tutorial, expires_on=NOW + timedelta(days=5))
    await world.store.set("no-rotator", SecretValue("k"), tags={"CredentialId": "x"}, expires_on=NOW)
    sweep = Sweep(
        InMemoryStores(world.store), (VAULT,), InMemoryQueue(), stuck_after=timedelta(hours=1), clock=lambda: NOW
    )
    report = await sweep.run()
    assert {(d.name, d.reason) for d in report.enqueued} == {("storage-key", "near-expiry")}


async def test_the_operators_plan_names_the_implied_rotator_of_a_tutorial_secret(world: World) -> None:
    from secret_rotation.operations.plan import plan_vault

    group = "/subscriptions/s/resourceGroups/g"
    tutorial = {
        "CredentialId": "key1",
        "ProviderAddress": f"{group}/providers/Microsoft.Storage/storageAccounts/a",
        "ValidityPeriodDays": "60",
    }
    await world.store.set("storage-key", SecretValue("k"), tags=tutorial, expires_on=NOW + timedelta(days=5))
    plan = await plan_vault(world.store, RotatorRegistry(), Scopes((VAULT,), (group,)), clock=lambda: NOW)
    (entry,) = plan.entries
    assert (entry.rotator, entry.pattern, entry.when, entry.problems) == ("storage-account-key", "dual", "due now", ())
