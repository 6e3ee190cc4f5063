"""Administrator passwords changed through the management plane (single credential), shaped like
Microsoft's single-credential tutorial (no RotatorType: the resource type implies the rotator), through
the registered functions, then a hard crash at every step boundary. Counted at the provider: the
management double's password updates per server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import pytest
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.composition import Service
from secret_rotation.outcomes import Status
from secret_rotation.pending import pending_name
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import Credential, ProviderContext
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.integration.test_crash_recovery import _crash_worker
from tests.support.crash_worker import CRASH_EXIT_CODE, closing_updates
from tests.support.events import key_vault_event
from tests.support.figures import record_figure
from tests.support.host import LocalFunctionsHost
from tests.support.management import ManagementControl, server_id
from tests.support.stack import Postgres, break_lock, near_expiry, readable_values, unique

pytestmark = pytest.mark.integration

# (double's server kind, rotator) for each admin-password rotator.
KINDS = {"postgres-flexible-admin": "flexibleServers", "azure-sql-admin": "sqlServers"}


@dataclass
class Admin:
    rotator: str
    kind: str
    server: str
    login: str
    address: str
    password: str
    accepts: Callable[[str], Awaitable[bool]]


async def _server(
    rotator: str,
    env: dict[str, str],
    management_control: ManagementControl,
    postgres: Postgres,
    management_context: ProviderContext,
) -> Admin:
    kind = KINDS[rotator]
    server = f"srv-{uuid.uuid4().hex[:10]}"
    # A real PostgreSQL role backs a flexible server; a SQL server exists only in the double.
    if kind == "flexibleServers":
        login, password = await postgres.create_role("flexadmin")
    else:
        login, password = "sqladmin", postgres.new_password()
    await management_control.create_server(kind, server, login, password)
    address = server_id(env, kind, server)
    provider = RotatorRegistry(context=management_context).get(rotator)

    async def accepts(candidate: str) -> bool:
        config = RotationConfig(rotator, login, address, 60)
        return await provider.accepts(config, Credential(login, SecretValue(candidate)))

    return Admin(rotator, kind, server, login, address, password, accepts)


async def _seed(vault: SecretClient, admin: Admin, leak: list[str]) -> tuple[str, str]:
    """The tutorial's tags: CredentialId = admin login, ProviderAddress = resource ID, ValidityPeriodDays."""
    leak.append(admin.password)
    name = unique("admin-pw")
    secret = await vault.set_secret(
        name,
        admin.password,
        tags={"CredentialId": admin.login, "ProviderAddress": admin.address, "ValidityPeriodDays": "60"},
        expires_on=near_expiry(),
    )
    return name, secret.properties.version or ""


@pytest.mark.parametrize("rotator", sorted(KINDS))
async def test_the_tutorial_secret_rotates_with_exactly_one_polled_password_update(
    rotator: str,
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    management_context: ProviderContext,
    management_control: ManagementControl,
    leak_check: list[str],
) -> None:
    admin = await _server(rotator, stack_environ, management_control, postgres, management_context)
    name, version = await _seed(vault, admin, leak_check)
    event = key_vault_event(stack_environ["KEYVAULT_URL"], name, version)

    for _ in range(3):  # the event, then two duplicates: one rotation, one update
        await host.deliver_event(event)
        deliveries = await host.drain_queue(stack_environ["AzureWebJobsStorage"], stack_environ["ROTATION_QUEUE_NAME"])
        assert all(d.error is None for d in deliveries)

    rotated = await vault.get_secret(name)
    leak_check.append(rotated.value or "")
    updates = await management_control.password_updates(admin.kind, admin.server)
    record_figure(f"password updates for one rotation and two duplicates ({rotator})", updates)
    assert updates == 1
    assert rotated.properties.version != version and rotated.properties.tags
    assert rotated.properties.tags["CredentialId"] == admin.login
    assert await admin.accepts(rotated.value or ""), "the new password logs in"
    assert not await admin.accepts(admin.password), "the old one does not"


@pytest.mark.parametrize("rotator", sorted(KINDS))
async def test_a_hard_crash_at_every_boundary_recovers_to_exactly_one_rotation(
    rotator: str,
    stack_environ: dict[str, str],
    real_service: Service,
    vault: SecretClient,
    postgres: Postgres,
    management_context: ProviderContext,
    management_control: ManagementControl,
    leak_check: list[str],
) -> None:
    probe = await _server(rotator, stack_environ, management_control, postgres, management_context)
    name, version = await _seed(vault, probe, leak_check)
    code, out = await _crash_worker(
        -1, json.dumps(key_vault_event(stack_environ["KEYVAULT_URL"], name, version)), stack_environ
    )
    assert code == 0, out
    effects: list[str] = json.loads(out.splitlines()[-1])["effects"]
    # The record's versions are closed by the trailing updates; once the first is closed the rotation reads
    # as finished (its other version is a leftover), so a redelivery is skipped from there on.
    finished_at = len(effects) - closing_updates(effects) + 1

    lost = completed = 0
    updates: list[int] = []
    for crash_at in range(len(effects) + 1):
        admin = await _server(rotator, stack_environ, management_control, postgres, management_context)
        name, version = await _seed(vault, admin, leak_check)
        body = json.dumps(key_vault_event(stack_environ["KEYVAULT_URL"], name, version))
        code, out = await _crash_worker(crash_at, body, stack_environ)
        assert code == CRASH_EXIT_CODE, (crash_at, out)
        # The password the server accepts is always one Key Vault holds (current version or pending record).
        held = [v for _, v, t in await readable_values(vault, name) + await readable_values(vault, pending_name(name))]
        leak_check.extend(held)
        lost += 0 if any([await admin.accepts(v) for v in held]) else 1

        await break_lock(stack_environ, stack_environ["KEYVAULT_URL"], name)
        outcome = await real_service.worker.handle(body)
        assert outcome.status is (Status.SKIPPED if crash_at >= finished_at else Status.ROTATED), (crash_at, outcome)
        versions = await readable_values(vault, name)
        leak_check.extend(v for _, v, _ in versions)
        assert len(versions) == 2 and await admin.accepts(versions[-1][1]), crash_at
        assert not await admin.accepts(admin.password), crash_at
        updates.append(await management_control.password_updates(admin.kind, admin.server))
        completed += 1

    record_figure(f"crash points injected ({rotator})", len(effects) + 1)
    record_figure(f"rotations completed after recovery ({rotator})", completed)
    record_figure(f"credentials lost ({rotator})", lost)
    record_figure(f"password updates per recovered rotation ({rotator})", updates)
    assert (completed, lost) == (len(effects) + 1, 0)
    # A crash after the update found the server already accepting the pending password: no second update.
    assert updates == [1] * (len(effects) + 1), (updates, effects)
