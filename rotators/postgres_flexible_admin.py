"""Single credential: the administrator password of an Azure Database for PostgreSQL flexible server.

Tags: `CredentialId` = the server's administrator login, `ProviderAddress` = the server's ARM resource ID
(`Microsoft.DBforPostgreSQL/flexibleServers`). Secret value: the bare password.
The password changes through the management plane (`azure-mgmt-postgresqlflexibleservers`: a `PATCH`
of the server, a long-running operation polled to completion), so no database login is needed to change
it; verification is a real login to the server's FQDN (database `postgres`, TLS required). Locally the
stack's PostgreSQL stands in for the server (`ProviderContext.database_port`).
"""

from __future__ import annotations

from typing import Any

from secret_rotation.rotator import Credential
from secret_rotation.secret_value import SecretValue

from . import postgres
from .admin_password import AdminPasswordRotator
from .azure_management import ResourceAddress, arm_client

STANDARD_PORT = 5432


class PostgresFlexibleAdminRotator(AdminPasswordRotator):
    name = "postgres-flexible-admin"
    resource_type = "Microsoft.DBforPostgreSQL/flexibleServers"
    kind = "flexible server"

    def client(self, address: ResourceAddress) -> Any:
        from azure.mgmt.postgresqlflexibleservers.aio import PostgreSQLManagementClient

        return arm_client(PostgreSQLManagementClient, self.context, address.subscription)

    def update(self, password: SecretValue) -> Any:
        from azure.mgmt.postgresqlflexibleservers.models import ServerForPatch, ServerPropertiesForPatch

        return ServerForPatch(properties=ServerPropertiesForPatch(administrator_login_password=password.reveal()))

    async def login(self, server: str, fqdn: str, credential: Credential) -> bool:
        local = self.context.database_port
        target = postgres.PostgresAddress(
            host=fqdn, port=local or STANDARD_PORT, database="postgres", sslmode="prefer" if local else "require"
        )
        return await postgres.accepts(target, credential)
