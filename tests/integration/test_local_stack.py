"""Integration tests of the local stack (`scripts/stack.py up`) through the real Azure SDK clients.

They prove the doubles are faithful enough for production code paths: Key Vault via
`azure.keyvault.secrets.aio.SecretClient` + `azure.identity.aio.ManagedIdentityCredential` (App Service
protocol), queues via Azurite, and PostgreSQL password logins over TCP. A missing env file fails the tests
on purpose: a silently skipped integration suite hides a broken stack.

Secret values never appear in output: comparisons go through `_assert_same_value`, which raises without them.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import psycopg
import pytest
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.queue.aio import QueueClient
from psycopg import sql
from psycopg.conninfo import make_conninfo

pytestmark = pytest.mark.integration

VAULT_RESOURCE = "https://vault.azure.net"


def _assert_same_value(got: str | None, want: str, what: str = "secret value") -> None:
    # A plain `assert got == want` would print both values in pytest's failure report.
    if got != want:
        raise AssertionError(f"{what} differs from what was stored (values withheld)")


def _name(prefix: str = "it") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def _secret_client(stack_env: dict[str, str], credential: Any) -> SecretClient:
    return SecretClient(
        stack_env["KEYVAULT_URL"],
        credential,
        api_version=stack_env["KEYVAULT_API_VERSION"],
        verify_challenge_resource=stack_env["KEYVAULT_VERIFY_CHALLENGE_RESOURCE"] == "true",
        connection_verify=stack_env["KEYVAULT_CA_BUNDLE"],
    )


@pytest.fixture
async def client(identity_env: dict[str, str]) -> AsyncIterator[SecretClient]:
    credential = ManagedIdentityCredential()
    async with credential, _secret_client(identity_env, credential) as secret_client:
        yield secret_client


async def _raw_token(http: aiohttp.ClientSession, stack_env: dict[str, str], resource: str) -> str:
    params = {"api-version": "2019-08-01", "resource": resource}
    headers = {"X-IDENTITY-HEADER": stack_env["IDENTITY_HEADER"]}
    async with http.get(stack_env["IDENTITY_ENDPOINT"], params=params, headers=headers) as response:
        assert response.status == 200
        body = await response.json()
    return str(body["access_token"])


async def _management(http: aiohttp.ClientSession, stack_env: dict[str, str], method: str, path: str) -> Any:
    async with http.request(method, f"{stack_env['KEYVAULT_MANAGEMENT_URL']}{path}") as response:
        assert response.status == 200, await response.text()
        return await response.json()


# --- identity endpoint -------------------------------------------------------------------------------------


async def test_identity_endpoint_answers_app_service_shape(http: aiohttp.ClientSession, stack_env: dict[str, str]):
    params = {"api-version": "2019-08-01", "resource": VAULT_RESOURCE}
    headers = {"X-IDENTITY-HEADER": stack_env["IDENTITY_HEADER"]}
    async with http.get(stack_env["IDENTITY_ENDPOINT"], params=params, headers=headers) as response:
        assert response.status == 200
        body = await response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str) and int(body["expires_on"]) > time.time() + 3000
    assert body["resource"] == VAULT_RESOURCE
    assert body["token_type"] == "Bearer"
    assert body["client_id"] == stack_env["AZURE_CLIENT_ID"]
    assert body["access_token"].count(".") == 2


async def test_identity_endpoint_rejects_wrong_header(http: aiohttp.ClientSession, stack_env: dict[str, str]):
    params = {"api-version": "2019-08-01", "resource": VAULT_RESOURCE}
    async with http.get(stack_env["IDENTITY_ENDPOINT"], params=params, headers={"X-IDENTITY-HEADER": "nope"}) as r:
        assert r.status == 401
        body = await r.json()
    assert body["statusCode"] == 401 and "X-IDENTITY-HEADER" in body["message"]
    async with http.get(stack_env["IDENTITY_ENDPOINT"], params=params) as r:
        assert r.status == 401


async def test_managed_identity_credential_with_wrong_header_fails(
    identity_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-stack-secret")
    async with ManagedIdentityCredential() as credential:
        with pytest.raises(ClientAuthenticationError):
            await credential.get_token(f"{VAULT_RESOURCE}/.default")


async def test_managed_identity_credential_with_client_id(identity_env: dict[str, str]):
    async with ManagedIdentityCredential(client_id=identity_env["AZURE_CLIENT_ID"]) as credential:
        token = await credential.get_token(f"{VAULT_RESOURCE}/.default")
    assert token.expires_on > time.time() + 3000
    async with ManagedIdentityCredential(client_id=str(uuid.uuid4())) as credential:
        with pytest.raises(ClientAuthenticationError):
            await credential.get_token(f"{VAULT_RESOURCE}/.default")


# --- Key Vault auth ----------------------------------------------------------------------------------------


async def test_vault_without_token_gets_bearer_challenge(http: aiohttp.ClientSession, stack_env: dict[str, str]):
    url = f"{stack_env['KEYVAULT_URL']}/secrets/{_name()}?api-version=7.6"
    async with http.get(url) as response:
        assert response.status == 401
        challenge = response.headers["WWW-Authenticate"]
        body = await response.json()
    assert challenge.startswith('Bearer authorization="https://login.microsoftonline.com/')
    assert f'resource="{VAULT_RESOURCE}"' in challenge
    assert body["error"]["code"] == "Unauthorized"


async def test_vault_rejects_wrong_audience_and_forged_tokens(http: aiohttp.ClientSession, stack_env: dict[str, str]):
    url = f"{stack_env['KEYVAULT_URL']}/secrets/{_name()}?api-version=7.6"
    storage_token = await _raw_token(http, stack_env, "https://storage.azure.com")
    vault_token = await _raw_token(http, stack_env, VAULT_RESOURCE)
    forged = vault_token[:-4] + ("AAAA" if not vault_token.endswith("AAAA") else "BBBB")
    for token in (storage_token, forged, "not-a-jwt"):
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 401
            assert "WWW-Authenticate" in response.headers
    # The genuine token passes authentication and reaches the (missing) secret.
    async with http.get(url, headers={"Authorization": f"Bearer {vault_token}"}) as response:
        assert response.status == 404


class _WrongAudienceCredential:
    """Hands the SDK tokens for Storage, whatever Key Vault's challenge asks for."""

    def __init__(self, inner: ManagedIdentityCredential) -> None:
        self._inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token: AccessToken = await self._inner.get_token("https://storage.azure.com/.default")
        return token

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        info: AccessTokenInfo = await self._inner.get_token_info("https://storage.azure.com/.default")
        return info


async def test_sdk_with_wrong_audience_token_raises(identity_env: dict[str, str]):
    inner = ManagedIdentityCredential()
    async with inner, _secret_client(identity_env, _WrongAudienceCredential(inner)) as secret_client:
        with pytest.raises(ClientAuthenticationError) as info:
            await secret_client.get_secret(_name())
    assert info.value.status_code == 401


async def test_unsupported_api_version_is_bad_parameter(http: aiohttp.ClientSession, stack_env: dict[str, str]):
    token = await _raw_token(http, stack_env, VAULT_RESOURCE)
    url = f"{stack_env['KEYVAULT_URL']}/secrets?api-version=2016-10-01"
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "BadParameter"


# --- Key Vault secrets through the SDK ----------------------------------------------------------------------


async def test_set_and_get_round_trip(client: SecretClient, stack_env: dict[str, str]):
    name, value = _name(), uuid.uuid4().hex
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=30)
    stored = await client.set_secret(
        name, value, tags={"rotation": "postgres"}, content_type="text/plain", expires_on=expires
    )
    version = stored.properties.version
    assert version is not None and len(version) == 32 and int(version, 16) >= 0
    assert stored.id == f"{stack_env['KEYVAULT_URL']}/secrets/{name}/{version}"
    _assert_same_value(stored.value, value)

    latest = await client.get_secret(name)
    _assert_same_value(latest.value, value)
    props = latest.properties
    assert (props.version, props.tags, props.content_type) == (version, {"rotation": "postgres"}, "text/plain")
    assert props.enabled is True and props.expires_on == expires and props.not_before is None
    assert props.created_on is not None and props.updated_on is not None
    assert (props.recovery_level, props.recoverable_days) == ("Recoverable+Purgeable", 90)
    _assert_same_value((await client.get_secret(name, version)).value, value)


async def test_update_properties_and_disabled_version_is_forbidden(client: SecretClient):
    name = _name()
    first = await client.set_secret(name, uuid.uuid4().hex)
    updated = await client.update_secret_properties(
        name, first.properties.version, enabled=False, tags={"state": "retired"}, content_type="x"
    )
    assert (updated.enabled, updated.tags, updated.content_type) == (False, {"state": "retired"}, "x")
    with pytest.raises(HttpResponseError) as info:
        await client.get_secret(name)
    assert info.value.status_code == 403
    assert info.value.error is not None and info.value.error.code == "Forbidden"
    assert "disabled" in str(info.value.message)
    # Updating "latest" (no version) is what SDK callers do when they omit the version.
    again = await client.update_secret_properties(name, enabled=True)
    assert again.enabled is True and again.version == first.properties.version


async def test_versions_listing_and_latest_is_newest_created(client: SecretClient):
    name = _name()
    created = [await client.set_secret(name, uuid.uuid4().hex) for _ in range(5)]
    # A disabled newest version is still "latest", like Key Vault.
    await client.update_secret_properties(name, created[-1].properties.version, enabled=False)
    with pytest.raises(HttpResponseError) as info:
        await client.get_secret(name)
    assert info.value.status_code == 403

    pages = client.list_properties_of_secret_versions(name, max_page_size=2).by_page()
    sizes, versions = [], []
    async for page in pages:
        items = [item async for item in page]
        sizes.append(len(items))
        versions += [item.version for item in items]
    assert sizes == [2, 2, 1]
    assert sorted(map(str, versions)) == sorted(str(s.properties.version) for s in created)
    older = await client.get_secret(name, created[1].properties.version)
    assert older.properties.version == created[1].properties.version


async def test_list_secrets_pages_without_values(client: SecretClient, stack_env: dict[str, str]):
    prefix = _name("page")
    names = {f"{prefix}-{i}" for i in range(5)}
    for name in names:
        await client.set_secret(name, uuid.uuid4().hex, tags={"prefix": prefix})
    seen: dict[str, Any] = {}
    page_sizes = []
    async for page in client.list_properties_of_secrets(max_page_size=2).by_page():
        items = [item async for item in page]
        page_sizes.append(len(items))
        seen.update({item.name: item for item in items if item.name in names})
    assert set(seen) == names
    assert max(page_sizes) <= 2 and len(page_sizes) >= 3
    for name, item in seen.items():
        assert item.id == f"{stack_env['KEYVAULT_URL']}/secrets/{name}" and item.version is None
        assert item.tags == {"prefix": prefix} and item.enabled is True


async def test_delete_then_recreate(client: SecretClient):
    name = _name()
    await client.set_secret(name, uuid.uuid4().hex)
    await client.set_secret(name, uuid.uuid4().hex)
    deleted = await client.delete_secret(name)
    assert deleted.name == name and deleted.recovery_id is not None  # soft delete: recoverable
    with pytest.raises(ResourceNotFoundError):
        await client.get_secret(name)
    # The name stays reserved until the deleted secret is purged (tests/doubles_fidelity/test_keyvault_soft_delete.py).
    await client.purge_deleted_secret(name)
    value = uuid.uuid4().hex
    await client.set_secret(name, value)
    _assert_same_value((await client.get_secret(name)).value, value)
    assert len([v async for v in client.list_properties_of_secret_versions(name)]) == 1


async def test_missing_secret_and_version_are_not_found(client: SecretClient):
    with pytest.raises(ResourceNotFoundError) as info:
        await client.get_secret(_name())
    assert info.value.error is not None and info.value.error.code == "SecretNotFound"
    name = _name()
    await client.set_secret(name, uuid.uuid4().hex)
    with pytest.raises(ResourceNotFoundError):
        await client.get_secret(name, uuid.uuid4().hex)
    with pytest.raises(ResourceNotFoundError):
        await client.delete_secret(_name())


async def test_invalid_name_is_bad_parameter(client: SecretClient):
    with pytest.raises(HttpResponseError) as info:
        await client.set_secret("not_valid_name", "x")
    assert info.value.status_code == 400
    assert info.value.error is not None and info.value.error.code == "BadParameter"


# --- management endpoints ----------------------------------------------------------------------------------


async def test_time_shift_moves_expiry_into_the_past(
    client: SecretClient, http: aiohttp.ClientSession, stack_env: dict[str, str]
):
    name = _name()
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=2)
    before = (await client.set_secret(name, uuid.uuid4().hex, expires_on=expires)).properties
    shifted = await _management(http, stack_env, "POST", "/time-shift?seconds=3600")
    assert shifted["seconds"] == 3600
    after = (await client.get_secret(name)).properties
    assert after.expires_on == expires - dt.timedelta(hours=1)
    assert before.created_on is not None and after.created_on == before.created_on - dt.timedelta(hours=1)


async def test_request_counters(client: SecretClient, http: aiohttp.ClientSession, stack_env: dict[str, str]):
    async with http.get(stack_env["KEYVAULT_URL"] + "/ping") as response:
        assert response.status == 200
    name = _name()
    await client.set_secret(name, uuid.uuid4().hex)
    start = await _management(http, stack_env, "GET", "/requests")
    await client.get_secret(name)
    await client.update_secret_properties(name, tags={"a": "b"})
    end = await _management(http, stack_env, "GET", "/requests")
    assert end["get"] - start["get"] >= 1 and end["update"] - start["update"] >= 1
    assert set(end) >= {"set", "get", "update", "list", "list_versions", "delete", "total"}
    reset = await _management(http, stack_env, "POST", "/requests/reset")
    assert reset["total"] == 0


# --- Azurite and PostgreSQL --------------------------------------------------------------------------------


async def test_queue_round_trip_on_azurite(stack_env: dict[str, str]):
    queue_name = f"it-{uuid.uuid4().hex[:16]}"
    async with QueueClient.from_connection_string(stack_env["AzureWebJobsStorage"], queue_name) as queue:
        await queue.create_queue()
        try:
            await queue.send_message('{"secret": "db-password"}')
            messages = [m async for m in queue.receive_messages(max_messages=5)]
            assert [m.content for m in messages] == ['{"secret": "db-password"}']
            await queue.delete_message(messages[0])
        finally:
            await queue.delete_queue()


async def test_postgres_password_login_over_tcp(stack_env: dict[str, str]):
    role, password = f"it_{uuid.uuid4().hex[:12]}", uuid.uuid4().hex
    async with await psycopg.AsyncConnection.connect(stack_env["PG_ADMIN_DSN"], autocommit=True) as admin:
        await admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password))
        )
        try:
            tcp = {"host": stack_env["PGHOST"], "port": stack_env["PGPORT"], "user": role, "dbname": "postgres"}
            async with await psycopg.AsyncConnection.connect(make_conninfo(**tcp, password=password)) as conn:
                cursor = await conn.execute("SELECT current_user, inet_server_addr()::text")
                assert await cursor.fetchone() == (role, "127.0.0.1/32")
            with pytest.raises(psycopg.OperationalError):
                await psycopg.AsyncConnection.connect(make_conninfo(**tcp, password="wrong"))
            # Admin over TCP has no trust rule: it needs a password the postgres role does not have.
            with pytest.raises(psycopg.OperationalError):
                await psycopg.AsyncConnection.connect(make_conninfo(**dict(tcp, user="postgres")))
            cursor = await admin.execute(
                "SELECT rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid WHERE rolname = %s", (role,)
            )
            assert await cursor.fetchone() == (True,)
        finally:
            await admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
