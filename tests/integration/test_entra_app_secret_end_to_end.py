"""An Entra application secret tagged like Microsoft's AAD app sample (no RotatorType), through the
registered functions, Graph and the token authority of the management double; then a hard crash at every
step boundary."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.keyvault.secrets.aio import SecretClient

from rotators.entra_app_secret import EntraAppSecretRotator
from secret_rotation.composition import Service
from secret_rotation.outcomes import Status
from secret_rotation.pending import pending_name
from secret_rotation.rotator import Credential, ProviderContext
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.integration.test_crash_recovery import _crash_worker
from tests.support.crash_worker import CRASH_EXIT_CODE, closing_updates
from tests.support.events import key_vault_event
from tests.support.figures import record_figure
from tests.support.host import LocalFunctionsHost
from tests.support.management import ManagementControl
from tests.support.stack import break_lock, near_expiry, readable_values, time_shift, unique

pytestmark = pytest.mark.integration


async def _seed(
    env: dict[str, str], vault: SecretClient, management_control: ManagementControl, leak: list[str]
) -> tuple[str, str, str, str]:
    """An application with a secret made by hand, stored the AAD sample's way: (name, version, address, object id)."""
    object_id = str(uuid.uuid4())
    key_id, secret = await management_control.create_application(object_id, str(uuid.uuid4()))
    leak.append(secret)
    address = f"/tenants/{env['MANAGEMENT_TENANT_ID']}/applications/{object_id}"
    name = unique("entra")
    stored = await vault.set_secret(
        name,
        secret,
        tags={"CredentialId": key_id, "ProviderAddress": address, "ValidityPeriodDays": "60"},
        expires_on=near_expiry(),
    )
    return name, stored.properties.version or "", address, object_id


async def _works(management_context: ProviderContext, address: str, key_id: str, secret: str) -> bool:
    config = RotationConfig("entra-app-secret", key_id, address, 60)
    return await EntraAppSecretRotator(management_context).accepts(config, Credential(key_id, SecretValue(secret)))


async def test_two_rotations_keep_the_previous_secret_working_and_never_more_than_two(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    management_context: ProviderContext,
    management_control: ManagementControl,
    leak_check: list[str],
) -> None:
    name, version, address, object_id = await _seed(stack_environ, vault, management_control, leak_check)
    secrets = [(await vault.get_secret(name))]
    held_after: list[int] = []
    for _ in range(2):
        await host.deliver_event(key_vault_event(stack_environ["KEYVAULT_URL"], name, version))
        deliveries = await host.drain_queue(stack_environ["AzureWebJobsStorage"], stack_environ["ROTATION_QUEUE_NAME"])
        assert [d.error for d in deliveries] == [None]
        newest = await vault.get_secret(name)
        leak_check.append(newest.value or "")
        secrets.append(newest)
        held_after.append(len((await management_control.application(object_id))["keyIds"]))
        version = newest.properties.version or ""
        await time_shift(stack_environ, days=31)

    first, second, third = secrets
    tags = [s.properties.tags or {} for s in secrets]
    assert (
        tags[1]["CredentialId"] != tags[0]["CredentialId"]
        and tags[1]["AlternateCredentialId"] == tags[0]["CredentialId"]
    )
    assert tags[2]["AlternateCredentialId"] == tags[1]["CredentialId"]
    assert await _works(management_context, address, tags[2]["CredentialId"], third.value or ""), (
        "the new secret gets a token"
    )
    assert await _works(management_context, address, tags[1]["CredentialId"], second.value or ""), (
        "the previous one still does"
    )
    assert not await _works(management_context, address, tags[0]["CredentialId"], first.value or ""), (
        "two rotations ago: removed"
    )
    assert sorted((await management_control.application(object_id))["keyIds"]) == sorted(
        [tags[1]["CredentialId"], tags[2]["CredentialId"]]
    )
    record_figure("Entra application passwords after each of two rotations", held_after)
    assert held_after == [2, 2]


async def test_a_hard_crash_at_every_boundary_recovers_to_exactly_one_rotation(
    stack_environ: dict[str, str],
    real_service: Service,
    vault: SecretClient,
    management_context: ProviderContext,
    management_control: ManagementControl,
    leak_check: list[str],
) -> None:
    name, version, _, _ = await _seed(stack_environ, vault, management_control, leak_check)
    code, out = await _crash_worker(
        -1, json.dumps(key_vault_event(stack_environ["KEYVAULT_URL"], name, version)), stack_environ
    )
    assert code == 0, out
    effects: list[str] = json.loads(out.splitlines()[-1])["effects"]
    # The record's versions are closed by the trailing updates; once the first is closed the rotation reads
    # as finished (its other version is a leftover), so a redelivery is skipped from there on.
    finished_at = len(effects) - closing_updates(effects) + 1

    rejected = unheld = completed = 0
    most_after = 0
    for crash_at in range(len(effects) + 1):
        name, version, address, object_id = await _seed(stack_environ, vault, management_control, leak_check)
        body = json.dumps(key_vault_event(stack_environ["KEYVAULT_URL"], name, version))
        code, out = await _crash_worker(crash_at, body, stack_environ)
        assert code == CRASH_EXIT_CODE, (crash_at, out)
        newest = await vault.get_secret(name)
        newest_id = (newest.properties.tags or {})["CredentialId"]
        rejected += 0 if await _works(management_context, address, newest_id, newest.value or "") else 1
        stored = await readable_values(vault, name) + await readable_values(vault, pending_name(name))
        leak_check.extend(v for _, v, _ in stored)
        held_ids = {t.get("CredentialId") for _, _, t in stored}
        unheld += len([k for k in (await management_control.application(object_id))["keyIds"] if k not in held_ids])

        await break_lock(stack_environ, stack_environ["KEYVAULT_URL"], name)
        outcome = await real_service.worker.handle(body)
        assert outcome.status is (Status.SKIPPED if crash_at >= finished_at else Status.ROTATED), (crash_at, outcome)
        versions = await readable_values(vault, name)
        leak_check.extend(v for _, v, _ in versions)
        assert len(versions) == 2, crash_at
        (_, old_value, old_tags), (_, new_value, new_tags) = versions
        assert await _works(management_context, address, new_tags["CredentialId"], new_value), crash_at
        assert await _works(management_context, address, old_tags["CredentialId"], old_value), crash_at
        key_ids = (await management_control.application(object_id))["keyIds"]
        assert sorted(key_ids) == sorted([old_tags["CredentialId"], new_tags["CredentialId"]]), crash_at
        most_after = max(most_after, len(key_ids))
        completed += 1

    record_figure("crash points injected (entra-app-secret)", len(effects) + 1)
    record_figure("rotations completed after recovery (entra-app-secret)", completed)
    record_figure("moments the newest version was rejected (entra-app-secret)", rejected)
    record_figure("moments a Graph-issued secret was held by no Key Vault version (removed by the next apply)", unheld)
    record_figure("most application passwords after a recovered rotation (entra-app-secret)", most_after)
    assert (completed, rejected, most_after) == (len(effects) + 1, 0, 2)
