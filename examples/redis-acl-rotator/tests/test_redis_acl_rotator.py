"""The plugin's own tests: its address and value formats, and the conformance kit of the rotation
service against the local stack's Redis (`scripts/stack.py up` writes its address and admin to the env
file). Run from the service's checkout: `pytest examples/redis-acl-rotator/tests`."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis_acl_rotator import RedisAclUserRotator, RedisAddress

from secret_rotation.conformance import ConformanceCase, RotatorConformance, Seed
from secret_rotation.errors import ConfigurationError
from secret_rotation.rotator import Credential
from secret_rotation.secret_value import SecretValue


@pytest.mark.parametrize(
    ("address", "scope"),
    [("redis://127.0.0.1:6380", "redis://127.0.0.1:6380"), ("rediss://cache.example", "rediss://cache.example:6379")],
)
def test_addresses_have_one_canonical_scope(address: str, scope: str) -> None:
    assert RedisAddress.parse(address).scope == scope


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:6379", "redis://user:pw@127.0.0.1", "redis://127.0.0.1/0", "redis://h:port"]
)
def test_unusable_addresses_are_configuration_errors(address: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisAddress.parse(address)


def test_the_value_names_its_user() -> None:
    rotator = RedisAclUserRotator()
    credential = Credential("blue", SecretValue('p"w\\d'))
    assert rotator.parse("blue", rotator.render(credential)) == credential
    with pytest.raises(ConfigurationError, match="names user 'blue'"):
        rotator.parse("green", rotator.render(credential))


class RedisUsers:
    """Creates ACL users through the stack's administrator; logs in as a user with a plain AUTH."""

    def __init__(self, env: dict[str, str]) -> None:
        self.host, self.port = env["REDIS_HOST"], int(env["REDIS_PORT"])
        self.admin = redis.asyncio.Redis(
            host=self.host, port=self.port, username=env["REDIS_ADMIN_USER"], password=env["REDIS_ADMIN_PASSWORD"]
        )

    @property
    def address(self) -> str:
        return f"redis://{self.host}:{self.port}"

    async def create(self, prefix: str, keys: str, commands: list[str]) -> Credential:
        user, password = f"{prefix}-{secrets.token_hex(5)}", secrets.token_urlsafe(24)
        await self.admin.acl_setuser(
            user, enabled=True, passwords=[f"+{password}"], keys=[keys] if keys else None, commands=commands
        )
        return Credential(user, SecretValue(password))

    async def logs_in(self, credential: Credential) -> bool:
        # RESP2 and no retries: a plain AUTH on a fresh connection, answered once.
        client = redis.asyncio.Redis(host=self.host, port=self.port, protocol=2, retry=Retry(NoBackoff(), 0))
        try:
            await client.auth(credential.secret.reveal(), credential.credential_id)
        except redis.AuthenticationError:
            return False
        finally:
            await client.aclose()
        return True


@pytest.mark.integration  # needs the local stack
class TestRedisAclUserConformance(RotatorConformance):
    @pytest.fixture
    async def conformance_case(self, conformance_env: dict[str, str]) -> AsyncIterator[ConformanceCase]:
        users = RedisUsers(conformance_env)

        async def seed() -> Seed:
            # The rotator's admin may change users' passwords and nothing else.
            admin = await users.create("rotator-admin", "", ["+acl|setuser", "+acl|getuser"])
            blue = await users.create("blue", "~app:*", ["+get", "+set"])
            green = await users.create("green", "~app:*", ["+get", "+set"])
            tags = {"CredentialId": blue.credential_id, "AlternateCredentialId": green.credential_id}
            value = json.dumps({"username": blue.credential_id, "password": blue.secret.reveal()})
            return Seed({**tags, "ProviderAddress": users.address}, SecretValue(value), admin=admin)

        yield ConformanceCase(RedisAclUserRotator, seed, users.logs_in, bad_tags=[{"AdminSecretName": None}])
        await users.admin.aclose()
