"""The azure-sql-admin rotator against the management double: one long-running PATCH polled to completion
per password, and the login seam locally answered by the double's record of the password (no SQL Server
runs here; the TDS connector is the default elsewhere)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rotators.azure_sql_admin import AzureSqlAdminRotator, ManagementDoubleLogin, TdsLogin, sql_login
from secret_rotation.errors import ConfigurationError
from secret_rotation.rotator import ApplyRequest, Credential, ProviderContext
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.management import ManagementControl, provider_context, server_id
from tests.support.stack import Postgres

pytestmark = pytest.mark.integration


@pytest.fixture
async def rotator(stack_environ: dict[str, str]) -> AsyncIterator[AzureSqlAdminRotator]:
    async with provider_context(stack_environ) as context:
        yield AzureSqlAdminRotator(context)


async def test_one_polled_password_update_then_only_the_new_password_logs_in(
    rotator: AzureSqlAdminRotator,
    stack_environ: dict[str, str],
    http: aiohttp.ClientSession,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    control = ManagementControl(http, stack_environ)
    password = postgres.new_password()
    server = f"sql-{uuid.uuid4().hex[:8]}"
    await control.create_server("sqlServers", server, "sqladmin", password)
    config = RotationConfig("azure-sql-admin", "sqladmin", server_id(stack_environ, "sqlServers", server), 60)
    rotator.validate(config)
    current = Credential("sqladmin", SecretValue(password))
    new = Credential("sqladmin", rotator.generate(config, "sqladmin"))
    leak_check.extend([password, new.secret.reveal()])
    assert await rotator.accepts(config, current) and not await rotator.accepts(config, new)
    await control.reset()

    await rotator.apply(ApplyRequest(config, new, current))

    assert await control.password_updates("sqlServers", server) == 1
    assert any("/azureAsyncOperation/" in r["path"] for r in await control.requests()), "polled by the SDK"
    assert await rotator.accepts(config, new) and not await rotator.accepts(config, current)


def test_the_login_seam_is_tds_unless_the_local_stack_names_its_double() -> None:
    assert isinstance(sql_login(ProviderContext()), TdsLogin)
    assert isinstance(sql_login(ProviderContext(sql_login_check="https://127.0.0.1:1/x")), ManagementDoubleLogin)


@pytest.mark.parametrize(
    "address",
    [
        "mssql://server.database.windows.net",
        "/subscriptions/x/resourceGroups/g/providers/Microsoft.Sql/managedInstances/m",
        "/subscriptions/x/resourceGroups/g/providers/Microsoft.Sql/servers/s/databases/d",
    ],
)
def test_provider_address_must_be_a_sql_server_resource_id(rotator: AzureSqlAdminRotator, address: str) -> None:
    with pytest.raises(ConfigurationError):
        rotator.validate(RotationConfig("azure-sql-admin", "sqladmin", address, 60))
