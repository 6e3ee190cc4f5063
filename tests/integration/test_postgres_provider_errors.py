"""A PostgreSQL misconfiguration through the registered queue function, the Key Vault double and the real
server: the one failure line must name what the operator has to fix (docs/runbook.md), and nothing rotates."""

from __future__ import annotations

import json

import pytest
from azure.keyvault.secrets.aio import SecretClient

from tests.support.host import LocalFunctionsHost
from tests.support.stack import Postgres, deliver_job, seed_dual_secret, seed_role_secret

pytestmark = pytest.mark.integration


async def test_a_missing_database_is_reported_as_such_not_as_a_refused_login(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = f"postgresql://{postgres.host}:{postgres.port}/no_such_db"
    seeded = await seed_role_secret(vault, postgres, leak_check, "missing-db", address=address)
    password = (await vault.get_secret(seeded.name)).value or ""

    logged = await deliver_job(host, stack_environ, seeded, caplog)

    [outcome] = [o for o in logged if o["status"] == "SecretRotationFailed"]
    assert outcome["step"] == "apply" and outcome["retryable"] is False, outcome
    assert 'database "no_such_db" does not exist' in outcome["reason"], outcome
    assert "refused the login" not in outcome["reason"]
    assert [v.version async for v in vault.list_properties_of_secret_versions(seeded.name)] == [seeded.version]
    assert await postgres.logs_in(seeded.role, password), "the credential is untouched"


async def test_dual_rotation_on_a_current_major_with_the_documented_grants(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres_current: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # docs/tags.md: on PostgreSQL 16 and later the admin role needs CREATEROLE and ADMIN OPTION on both roles.
    seeded = await seed_dual_secret(vault, postgres_current, leak_check, "pg2-dual")

    logged = await deliver_job(host, stack_environ, seeded, caplog)

    assert [o["status"] for o in logged] == ["SecretRotated"], logged
    document = json.loads((await vault.get_secret(seeded.name)).value or "{}")
    leak_check.append(document["password"])
    assert document["username"] == seeded.green
    assert await postgres_current.logs_in(seeded.green, document["password"])
    assert await postgres_current.logs_in(seeded.blue, seeded.blue_password), (
        "readers of the previous version keep working"
    )
