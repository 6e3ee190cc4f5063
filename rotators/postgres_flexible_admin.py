"""Single credential: the administrator password of an Azure Database for PostgreSQL flexible server.

Tags: `CredentialId` = the server's administrator login, `ProviderAddress` = the server's ARM resource ID
(`Microsoft.DBforPostgreSQL/flexibleServers`). Secret value: the bare password.
The password changes through the management plane (`azure-mgmt-postgresqlflexibleservers`: a `PATCH`
of the server, a long-running operation polled to completion), so no database login is needed to change
it; verification is a real login to the server's FQDN (database `postgres`, TLS required). Locally the
stack's PostgreSQL stands in for the server (`ProviderContext.database_port`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from secret_rotation.errors import ConfigurationError
from secret_rotation.rotator import ApplyRequest, Credential, SingleCredentialRotator
from secret_rotation.tags import RotationConfig

from . import postgres
from .azure_management import ResourceAddress, arm_client, call, complete, parse_resource

if TYPE_CHECKING:
    from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient

RESOURCE_TYPE = "Microsoft.DBforPostgreSQL/flexibleServers"
STANDARD_PORT = 5432


class PostgresFlexibleAdminRotator(SingleCredentialRotator):
    name = "postgres-flexible-admin"

    def scope(self, config: RotationConfig) -> str:
        return parse_resource(config.provider_address, RESOURCE_TYPE).scope

    def _client(self, address: ResourceAddress) -> PostgreSQLManagementClient:
        from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient

        return arm_client(PostgreSQLManagementClient, self.context, address.subscription)

    async def apply(self, request: ApplyRequest) -> None:
        from azure.mgmt.postgresqlflexibleservers.models import ServerForPatch, ServerPropertiesForPatch

        address = parse_resource(request.config.provider_address, RESOURCE_TYPE)
        patch = ServerForPatch(
            properties=ServerPropertiesForPatch(administrator_login_password=request.new.secret.reveal())
        )
        async with self._client(address) as client:
            await complete(
                f"flexible server {address.name}: password update",
                client.servers.begin_update(address.resource_group, address.name, patch),
            )

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        address = parse_resource(config.provider_address, RESOURCE_TYPE)
        async with self._client(address) as client:
            server = await call(
                f"flexible server {address.name}: properties",
                client.servers.get(address.resource_group, address.name),
            )
        if server.administrator_login != credential.credential_id:
            raise ConfigurationError(
                f"flexible server {address.name}: {credential.credential_id} is not its administrator login"
            )
        if not server.fully_qualified_domain_name:
            raise ConfigurationError(f"flexible server {address.name} has no FQDN yet")
        local = self.context.database_port
        target = postgres.PostgresAddress(
            host=server.fully_qualified_domain_name,
            port=local or STANDARD_PORT,
            database="postgres",
            sslmode="prefer" if local else "require",
        )
        return await postgres.accepts(target, credential)
