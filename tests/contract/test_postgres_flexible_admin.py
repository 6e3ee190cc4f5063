"""The postgres-flexible-admin rotator against the management double, whose flexible server is the stack's
PostgreSQL: the password update is a long-running PATCH polled to completion, and the login is real."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rotators.postgres_flexible_admin import PostgresFlexibleAdminRotator
from secret_rotation.errors import ConfigurationError
from secret_rotation.rotator import ApplyRequest, Credential
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.management import ManagementControl, provider_context, server_id
from tests.support.stack import Postgres

pytestmark = pytest.mark.integration


@pytest.fixture
async def rotator(stack_environ: dict[str, str]) -> AsyncIterator[PostgresFlexibleAdminRotator]:
    async with provider_context(stack_environ) as context:
        yield PostgresFlexibleAdminRotator(context)


async def test_one_polled_password_update_then_the_new_password_logs_in_and_the_old_one_does_not(
    rotator: PostgresFlexibleAdminRotator,
    stack_environ: dict[str, str],
    http: aiohttp.ClientSession,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    control = ManagementControl(http, stack_environ)
    role, password = await postgres.create_role("flexadmin")
    server = f"flex-{uuid.uuid4().hex[:8]}"
    await control.create_server("flexibleServers", server, role)
    config = RotationConfig("postgres-flexible-admin", role, server_id(stack_environ, "flexibleServers", server), 60)
    rotator.validate(config)
    current = Credential(role, SecretValue(password))
    new = Credential(role, rotator.generate(config, role))
    leak_check.extend([password, new.secret.reveal()])
    assert await rotator.accepts(config, current)
    assert not await rotator.accepts(config, new)
    await control.reset()

    await rotator.apply(ApplyRequest(config, new, current))

    assert await control.password_updates("flexibleServers", server) == 1
    seen = [r["path"] for r in await control.requests()]
    assert any("/azureAsyncOperation/" in path for path in seen), "the SDK's poller polled the operation"
    assert await rotator.accepts(config, new)
    assert not await rotator.accepts(config, current)
    assert await postgres.logs_in(role, new.secret.reveal()) and not await postgres.logs_in(role, password)


async def test_the_credential_must_be_the_servers_administrator_login(
    rotator: PostgresFlexibleAdminRotator, stack_environ: dict[str, str], http: aiohttp.ClientSession
) -> None:
    server = f"flex-{uuid.uuid4().hex[:8]}"
    await ManagementControl(http, stack_environ).create_server("flexibleServers", server, "someone_else")
    config = RotationConfig("postgres-flexible-admin", "me", server_id(stack_environ, "flexibleServers", server), 60)
    with pytest.raises(ConfigurationError, match="administrator login"):
        await rotator.accepts(config, Credential("me", SecretValue("x")))


@pytest.mark.parametrize(
    "address",
    [
        "postgresql://127.0.0.1:5432/postgres",
        "/subscriptions/x/resourceGroups/g/providers/Microsoft.DBforPostgreSQL/servers/single",
        "/subscriptions/x/resourceGroups/g/providers/Microsoft.DBforPostgreSQL/flexibleServers/s/databases/d",
    ],
)
def test_provider_address_must_be_a_flexible_server_resource_id(
    rotator: PostgresFlexibleAdminRotator, address: str
) -> None:
    with pytest.raises(ConfigurationError):
        rotator.validate(RotationConfig("postgres-flexible-admin", "admin", address, 60))
