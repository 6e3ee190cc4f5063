"""Shared by the single-credential rotators that change a server's administrator password through ARM
(`postgres-flexible-admin`, `azure-sql-admin`): the resource ID of the expected type is the scope, the
password changes by a long-running `PATCH` of the server polled to completion, and `accepts` reads the
server (administrator login, FQDN) and hands a real login to the subclass. A subclass names its
resource type and supplies three hooks: its management client, the update body, the login.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar

from secret_rotation.errors import ConfigurationError
from secret_rotation.rotator import ApplyRequest, Credential, SingleCredentialRotator
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig

from .azure_management import ResourceAddress, call, complete, parse_resource


class AdminPasswordRotator(SingleCredentialRotator):
    resource_type: ClassVar[str]
    kind: ClassVar[str]  # how messages name the server ("flexible server", "SQL server")

    def scope(self, config: RotationConfig) -> str:
        return parse_resource(config.provider_address, self.resource_type).scope

    @abstractmethod
    def client(self, address: ResourceAddress) -> Any:
        """The azure-mgmt aio client (built with `arm_client`); its `servers` operations are used."""

    @abstractmethod
    def update(self, password: SecretValue) -> Any:
        """The `begin_update` body that sets the administrator password."""

    @abstractmethod
    async def login(self, server: str, fqdn: str, credential: Credential) -> bool:
        """A real login to the server at `fqdn`."""

    async def apply(self, request: ApplyRequest) -> None:
        address = parse_resource(request.config.provider_address, self.resource_type)
        async with self.client(address) as client:
            await complete(
                f"{self.kind} {address.name}: password update",
                client.servers.begin_update(address.resource_group, address.name, self.update(request.new.secret)),
            )

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        address = parse_resource(config.provider_address, self.resource_type)
        async with self.client(address) as client:
            server = await call(
                f"{self.kind} {address.name}: properties", client.servers.get(address.resource_group, address.name)
            )
        if server.administrator_login != credential.credential_id:
            raise ConfigurationError(
                f"{self.kind} {address.name}: {credential.credential_id} is not its administrator login"
            )
        if not server.fully_qualified_domain_name:
            raise ConfigurationError(f"{self.kind} {address.name} has no FQDN yet")
        return await self.login(address.name, str(server.fully_qualified_domain_name), credential)
