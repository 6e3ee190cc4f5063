"""Single credential: a PostgreSQL role's password, changed in place by the role itself.

Tags: `CredentialId` = the role, `ProviderAddress` = postgresql://host:port/db.
Secret value: the bare password (the format of Microsoft's SQL password rotation sample).
Needs no admin: the role logs in with its current password and sets the new one.
"""

from __future__ import annotations

from secret_rotation.rotator import ApplyRequest, Credential, SingleCredentialRotator
from secret_rotation.tags import RotationConfig

from . import postgres


class PostgresRoleRotator(SingleCredentialRotator):
    name = "postgres-role"

    def scope(self, config: RotationConfig) -> str:
        return postgres.PostgresAddress.parse(config.provider_address).scope

    async def apply(self, request: ApplyRequest) -> None:
        address = postgres.PostgresAddress.parse(request.config.provider_address)
        connection = await postgres.connect(address, request.current)
        async with connection:
            await postgres.set_password(connection, request.new.credential_id, request.new)

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        return await postgres.accepts(postgres.PostgresAddress.parse(config.provider_address), credential)
