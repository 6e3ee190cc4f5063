"""Dual credential: two Redis ACL users alternate (an example plugin of the secret rotation service).

The service finds this rotator through the entry point `redis-acl-user` in the group
`secret_rotation.rotators` (see pyproject.toml) and loads it only when `ROTATION_ALLOWED_PLUGINS` names it.

Tags: `RotatorType` = redis-acl-user, `CredentialId` = the user the current version holds,
`AlternateCredentialId` = the other user, `ProviderAddress` = redis://host:port (rediss:// for TLS),
`AdminSecretName` = a secret in the same vault whose value is the password of a user allowed to run
`ACL SETUSER` and whose `CredentialId` tag names that user.
Secret value: JSON `{"username": ..., "password": ...}`: readers must learn which user is current.

Only the inactive user's password changes (`ACL SETUSER <user> on resetpass #<sha256>`: the server gets
the password's SHA-256, never the clear text); its keys and command rules stay as the operator set them.
Verification is a real `AUTH <user> <password>`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from secret_rotation.errors import ConfigurationError, ProviderRefusedError, TransientError
from secret_rotation.rotator import ApplyRequest, Credential, DualCredentialRotator
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig, Tag

if TYPE_CHECKING:
    import redis.asyncio

__all__ = ["RedisAclUserRotator", "RedisAddress"]

_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class RedisAddress:
    host: str
    port: int
    tls: bool

    @property
    def scope(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}"

    @classmethod
    def parse(cls, address: str) -> RedisAddress:
        parts = urlsplit(address)
        if parts.scheme not in ("redis", "rediss"):
            raise ConfigurationError(f"ProviderAddress {address!r} must start with redis:// or rediss://")
        if parts.username or parts.password:
            raise ConfigurationError("ProviderAddress must not carry a user or password")
        if not parts.hostname or parts.path.strip("/") or parts.query:
            raise ConfigurationError(f"ProviderAddress {address!r} must be redis://host[:port] and nothing more")
        try:
            port = parts.port or 6379
        except ValueError:
            raise ConfigurationError(f"ProviderAddress {address!r} has an invalid port") from None
        return cls(parts.hostname, port, parts.scheme == "rediss")


class RedisAclUserRotator(DualCredentialRotator):
    name = "redis-acl-user"

    def scope(self, config: RotationConfig) -> str:
        return RedisAddress.parse(config.provider_address).scope

    def validate(self, config: RotationConfig) -> None:
        super().validate(config)
        if not config.admin_secret_name:
            raise ConfigurationError(f"rotator {self.name} needs the {Tag.ADMIN_SECRET_NAME} tag")

    def render(self, credential: Credential) -> SecretValue:
        document = {"username": credential.credential_id, "password": credential.secret.reveal()}
        return SecretValue(json.dumps(document))

    def parse(self, credential_id: str, value: SecretValue) -> Credential:
        try:
            document = json.loads(value.reveal())
            user, password = str(document["username"]), str(document["password"])
        except (ValueError, KeyError, TypeError):
            raise ConfigurationError(
                f"secret value for {credential_id} is not JSON with username and password"
            ) from None
        if user != credential_id:
            raise ConfigurationError(f"secret value names user {user!r} but {Tag.CREDENTIAL_ID} says {credential_id!r}")
        return Credential(user, SecretValue(password))

    async def apply(self, request: ApplyRequest) -> None:
        from redis import exceptions

        if request.admin is None:
            raise ProviderRefusedError(f"rotator {self.name} got no admin credential")
        address = RedisAddress.parse(request.config.provider_address)
        user = request.new.credential_id
        digest = hashlib.sha256(request.new.secret.reveal().encode()).hexdigest()
        async with self._client(address, request.admin) as admin:
            try:
                if not await admin.acl_getuser(user):
                    raise ProviderRefusedError(f"Redis {address.scope} has no ACL user {user}")
                # `enabled=True` sends `on`; resetting first leaves exactly one password, the new one.
                await admin.acl_setuser(user, enabled=True, reset_passwords=True, hashed_passwords=[f"+{digest}"])
            except exceptions.AuthenticationError:
                raise ProviderRefusedError(
                    f"Redis {address.scope} refused the login of admin user {request.admin.credential_id}"
                ) from None
            except exceptions.NoPermissionError:
                raise ProviderRefusedError(
                    f"Redis {address.scope}: user {request.admin.credential_id} may not change ACL user {user}"
                ) from None
            except (exceptions.ConnectionError, exceptions.TimeoutError) as exc:
                raise TransientError(f"Redis {address.scope} unreachable ({exc.__class__.__name__})") from None

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        from redis import exceptions

        address = RedisAddress.parse(config.provider_address)
        async with self._client(address, credential) as client:
            try:
                await client.ping()
            except exceptions.AuthenticationError:
                return False
            except exceptions.NoPermissionError:
                return True  # AUTH passed; this user may just not run PING
            except (exceptions.ConnectionError, exceptions.TimeoutError) as exc:
                raise TransientError(f"Redis {address.scope} unreachable ({exc.__class__.__name__})") from None
        return True

    @contextlib.asynccontextmanager
    async def _client(self, address: RedisAddress, credential: Credential) -> AsyncIterator[redis.asyncio.Redis]:
        """A client that sends `AUTH <user> <password>` when it connects."""
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        client = redis.asyncio.Redis(
            host=address.host,
            port=address.port,
            username=credential.credential_id,
            password=credential.secret.reveal(),
            ssl=address.tls,
            ssl_ca_certs=self.context.ca_bundle if address.tls else None,
            socket_timeout=_TIMEOUT_SECONDS,
            socket_connect_timeout=_TIMEOUT_SECONDS,
            # No client retries: redis-py would retry a refused AUTH (an AuthenticationError is a
            # ConnectionError) for seconds; the service's queue decides when to try again.
            retry=Retry(NoBackoff(), 0),
        )
        try:
            yield client
        finally:
            await client.aclose()
