"""Dual credential: two PostgreSQL login roles alternate (blue/green users).

Tags: `CredentialId` = the role the current version holds, `AlternateCredentialId` = the other role,
`ProviderAddress` = postgresql://host:port/db, `AdminSecretName` = a secret in the same vault whose value
is the password of a role allowed to ALTER the two (CREATEROLE) and whose `CredentialId` tag names it.
Secret value: JSON `{"username": ..., "password": ...}`, because readers must learn which role is current.
Only the inactive role's password changes; the promoted version swaps the two tags, and the role that
was current keeps working until the next rotation.
"""

from __future__ import annotations

import json

from secret_rotation.errors import ConfigurationError, ProviderRefusedError
from secret_rotation.rotator import ApplyRequest, Credential, DualCredentialRotator
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig, Tag

from . import postgres


class PostgresDualUserRotator(DualCredentialRotator):
    name = "postgres-dual-user"

    def scope(self, config: RotationConfig) -> str:
        return postgres.PostgresAddress.parse(config.provider_address).scope

    def validate(self, config: RotationConfig) -> None:
        super().validate(config)
        if not config.admin_secret_name:
            raise ConfigurationError(f"rotator {self.name} needs the {Tag.ADMIN_SECRET_NAME} tag")

    def render(self, credential: Credential) -> SecretValue:
        return SecretValue(json.dumps({"username": credential.credential_id, "password": credential.secret.reveal()}))

    def parse(self, credential_id: str, value: SecretValue) -> Credential:
        try:
            document = json.loads(value.reveal())
            username, password = document["username"], document["password"]
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(
                f"secret value for {credential_id} is not JSON with username and password"
            ) from None
        if username != credential_id:
            raise ConfigurationError(
                f"secret value names role {username!r} but {Tag.CREDENTIAL_ID} says {credential_id!r}"
            )
        return Credential(credential_id, SecretValue(password))

    async def apply(self, request: ApplyRequest) -> None:
        if request.admin is None:
            raise ProviderRefusedError(f"rotator {self.name} got no admin credential")
        address = postgres.PostgresAddress.parse(request.config.provider_address)
        connection = await postgres.connect(address, request.admin)
        async with connection:
            await postgres.set_password(connection, request.new.credential_id, request.new)

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        return await postgres.accepts(postgres.PostgresAddress.parse(config.provider_address), credential)
