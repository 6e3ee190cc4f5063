"""The example plugin (examples/redis-acl-rotator, installed by setup.sh as its own package) through both
registered functions: found by its entry point and allowed by ROTATION_ALLOWED_PLUGINS, it rotates two
Redis ACL users end to end; left out of the allow-list, it is refused with one clear line."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

import function_app
from secret_rotation.composition import build_service
from secret_rotation.pending import pending_name
from secret_rotation.settings import ALLOWED_PLUGINS, Settings
from tests.support.events import key_vault_event
from tests.support.host import LocalFunctionsHost
from tests.support.stack import near_expiry, outcomes, unique

pytestmark = pytest.mark.integration


class Redis:
    def __init__(self, env: dict[str, str]) -> None:
        self.host, self.port = env["REDIS_HOST"], int(env["REDIS_PORT"])
        self.admin = redis.asyncio.Redis(
            host=self.host, port=self.port, username=env["REDIS_ADMIN_USER"], password=env["REDIS_ADMIN_PASSWORD"]
        )

    async def user(self, prefix: str, keys: str, commands: list[str]) -> tuple[str, str]:
        name, password = f"{prefix}-{secrets.token_hex(5)}", secrets.token_urlsafe(24)
        await self.admin.acl_setuser(
            name, enabled=True, passwords=[f"+{password}"], keys=[keys] if keys else None, commands=commands
        )
        return name, password

    async def auth(self, user: str, password: str) -> bool:
        client = redis.asyncio.Redis(host=self.host, port=self.port, protocol=2, retry=Retry(NoBackoff(), 0))
        try:
            return bool(await client.auth(password, user))
        except redis.AuthenticationError:
            return False
        finally:
            await client.aclose()


@pytest.fixture
async def redis_acl(stack_env: dict[str, str]) -> AsyncIterator[Redis]:
    server = Redis(stack_env)
    yield server
    await server.admin.aclose()


async def _seed(vault: SecretClient, server: Redis, leak: list[str]) -> tuple[str, str, dict[str, str]]:
    """A redis-acl-user secret near expiry; returns (name, version, {user: password})."""
    admin, admin_password = await server.user("rotator-admin", "", ["+acl|setuser", "+acl|getuser"])
    blue, blue_password = await server.user("blue", "~app:*", ["+get", "+set"])
    green, green_password = await server.user("green", "~app:*", ["+get", "+set"])
    leak.extend([admin_password, blue_password, green_password])
    name = unique("redis-acl")
    await vault.set_secret(f"{name}-admin", admin_password, tags={"CredentialId": admin})
    secret = await vault.set_secret(
        name,
        json.dumps({"username": blue, "password": blue_password}),
        content_type="application/json",
        tags={
            "RotatorType": "redis-acl-user",
            "CredentialId": blue,
            "AlternateCredentialId": green,
            "AdminSecretName": f"{name}-admin",
            "ProviderAddress": f"redis://{server.host}:{server.port}",
            "ValidityPeriodDays": "60",
        },
        expires_on=near_expiry(),
    )
    return name, secret.properties.version or "", {blue: blue_password, green: green_password}


async def test_the_installed_plugin_rotates_redis_users_from_an_event_grid_event(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    redis_acl: Redis,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert stack_environ[ALLOWED_PLUGINS] == "redis-acl-user"
    name, version, passwords = await _seed(vault, redis_acl, leak_check)
    (blue, blue_password), (green, green_password) = passwords.items()

    await host.deliver_event(key_vault_event(stack_environ["KEYVAULT_URL"], name, version))
    deliveries = await host.drain_queue(stack_environ["AzureWebJobsStorage"], stack_environ["ROTATION_QUEUE_NAME"])
    assert [d.error for d in deliveries] == [None]

    rotated = await vault.get_secret(name)
    document = json.loads(rotated.value or "{}")
    leak_check.append(document["password"])
    assert document["username"] == green and rotated.properties.tags
    assert (rotated.properties.tags["CredentialId"], rotated.properties.tags["AlternateCredentialId"]) == (green, blue)
    assert await redis_acl.auth(green, document["password"]), "the new version logs in"
    assert not await redis_acl.auth(green, green_password), "green's old password is gone"
    assert await redis_acl.auth(blue, blue_password), "readers of the previous version keep working"
    assert [o["status"] for o in outcomes(caplog)] == ["RotationEnqueued", "SecretRotated"]


async def test_a_plugin_left_out_of_the_allow_list_is_refused_with_one_clear_line(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    redis_acl: Redis,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env({k: v for k, v in stack_environ.items() if k != ALLOWED_PLUGINS})
    service = build_service(settings)
    monkeypatch.setattr(function_app, "_service", service)
    name, version, passwords = await _seed(vault, redis_acl, leak_check)
    caplog.clear()
    try:
        await host.deliver_queue_message(json.dumps(key_vault_event(stack_environ["KEYVAULT_URL"], name, version)))
    finally:
        await service.close()

    lines = [r for r in caplog.records if r.name == "secret_rotation"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    message = lines[0].getMessage()
    assert lines[0].levelname == "ERROR" and message.startswith("SecretRotationFailed")
    assert "rotator 'redis-acl-user' is installed (redis-acl-rotator" in message
    assert f"not allowed: add it to {ALLOWED_PLUGINS}" in message
    assert len([v async for v in vault.list_properties_of_secret_versions(name)]) == 1
    with pytest.raises(ResourceNotFoundError):
        await vault.get_secret(pending_name(name))
    for user, password in passwords.items():
        assert await redis_acl.auth(user, password), "nothing changed at the provider"


async def test_the_stacks_redis_has_acls_on_and_no_anonymous_user(redis_acl: Redis, stack_env: dict[str, str]) -> None:
    assert await redis_acl.auth(stack_env["REDIS_ADMIN_USER"], stack_env["REDIS_ADMIN_PASSWORD"])
    default = await redis_acl.admin.acl_getuser("default")
    assert default is not None and "off" in str(default["flags"])
