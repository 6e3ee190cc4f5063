"""Single credential: the administrator password of an Azure SQL logical server (Microsoft's
single-credential tutorial).

Tags: `CredentialId` = the server's administrator login, `ProviderAddress` = the server's ARM resource ID
(`Microsoft.Sql/servers`). Secret value: the bare password.
The password changes through `azure-mgmt-sql` (a server `PATCH`, a long-running operation polled to
completion). Verification goes through one connector seam, `SqlLogin`: a real TDS login (python-tds, TLS
against the system CAs) to the server's FQDN on 1433 in Azure. No SQL Server runs in the local stack, so
there `ProviderContext.sql_login_check` sends the check to the management double's record of the
password instead: the TDS path is not exercised by this repository's tests.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from secret_rotation.errors import TransientError
from secret_rotation.rotator import Credential, ProviderContext
from secret_rotation.secret_value import SecretValue

from .admin_password import AdminPasswordRotator
from .azure_management import ResourceAddress, arm_client

TDS_PORT = 1433
LOGIN_TIMEOUT_SECONDS = 15


class SqlLogin(Protocol):
    """The connector seam: does `credential` log in to the server named `server` at `fqdn`?"""

    async def accepts(self, server: str, fqdn: str, credential: Credential) -> bool: ...


class TdsLogin:
    """A real TDS login (python-tds), encrypted and checked against the system's CA bundle."""

    async def accepts(self, server: str, fqdn: str, credential: Credential) -> bool:
        return await asyncio.to_thread(self._login, server, fqdn, credential)

    def _login(self, server: str, fqdn: str, credential: Credential) -> bool:
        import certifi
        import pytds

        try:
            connection = pytds.connect(
                dsn=fqdn,
                port=TDS_PORT,
                database="master",
                user=credential.credential_id,
                password=credential.secret.reveal(),
                login_timeout=LOGIN_TIMEOUT_SECONDS,
                cafile=certifi.where(),
                validate_host=True,
                autocommit=True,
            )
        except pytds.LoginError:
            return False
        except (OSError, pytds.Error) as exc:
            raise TransientError(f"SQL server {server} unreachable ({exc.__class__.__name__})") from None
        connection.close()
        return True


class ManagementDoubleLogin:
    """Local stack only: the management double's record of each server's password stands in for TDS
    (one request over the context's transport, i.e. the shared connection pool)."""

    def __init__(self, endpoint: str, context: ProviderContext) -> None:
        self.endpoint, self.context = endpoint.rstrip("/"), context

    async def accepts(self, server: str, fqdn: str, credential: Credential) -> bool:
        from azure.core import AsyncPipelineClient
        from azure.core.exceptions import AzureError
        from azure.core.rest import HttpRequest

        body = {"login": credential.credential_id, "password": credential.secret.reveal()}
        client: AsyncPipelineClient[HttpRequest, Any] = AsyncPipelineClient(
            base_url=self.endpoint, policies=[], transport=self.context.transport()
        )
        try:
            async with client:
                response = await client.send_request(HttpRequest("POST", f"{self.endpoint}/{server}/login", json=body))
                await response.read()
                response.raise_for_status()
                return bool(response.json()["accepted"])
        except AzureError as exc:
            raise TransientError(f"SQL login check for {server} failed ({exc.__class__.__name__})") from None


def sql_login(context: ProviderContext) -> SqlLogin:
    if context.sql_login_check:
        return ManagementDoubleLogin(context.sql_login_check, context)
    return TdsLogin()


class AzureSqlAdminRotator(AdminPasswordRotator):
    name = "azure-sql-admin"
    resource_type = "Microsoft.Sql/servers"
    kind = "SQL server"

    def client(self, address: ResourceAddress) -> Any:
        from azure.mgmt.sql.aio import SqlManagementClient

        return arm_client(SqlManagementClient, self.context, address.subscription)

    def update(self, password: SecretValue) -> Any:
        from azure.mgmt.sql.models import ServerProperties, ServerUpdate

        return ServerUpdate(properties=ServerProperties(administrator_login_password=password.reveal()))

    async def login(self, server: str, fqdn: str, credential: Credential) -> bool:
        return await sql_login(self.context).accepts(server, fqdn, credential)
