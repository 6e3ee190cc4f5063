"""The management-plane rotators of issue 7 under the conformance kit, against the stack's management
double (ARM and Graph) and the stack's PostgreSQL. Written before those rotators reached this branch:
until they are merged, the module skips itself (the imports below), and then it runs as it stands.
Verified on a trial merge of issue-rotators: all four pass, except entra-app-secret's refusal of an
`AlternateCredentialId` equal to `CredentialId` (it rotates, and removes the current password).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from secret_rotation.conformance import ConformanceCase, RotatorConformance, Seed
from secret_rotation.rotator import Credential
from secret_rotation.secret_value import SecretValue
from tests.conformance.cases import postgres_of

pytestmark = pytest.mark.integration

_REASON = "issue 7's management-plane rotators are not merged into this branch yet"
management = pytest.importorskip("tests.support.management", reason=_REASON)
storage_account_key = pytest.importorskip("rotators.storage_account_key", reason=_REASON)
postgres_flexible_admin = pytest.importorskip("rotators.postgres_flexible_admin", reason=_REASON)
azure_sql_admin = pytest.importorskip("rotators.azure_sql_admin", reason=_REASON)
entra_app_secret = pytest.importorskip("rotators.entra_app_secret", reason=_REASON)


@pytest.fixture
async def control(stack_env: dict[str, str]) -> AsyncIterator[object]:
    import ssl

    context = ssl.create_default_context(cafile=stack_env["KEYVAULT_CA_BUNDLE"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        yield management.ManagementControl(http, stack_env)


class TestStorageAccountKey(RotatorConformance):
    @pytest.fixture
    async def conformance_case(self, stack_environ: dict[str, str]) -> AsyncIterator[ConformanceCase]:
        stack_env = stack_environ
        account = stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"]
        async with management.provider_context(stack_env) as context:

            async def seed() -> Seed:
                keys = await management.storage_keys(context, account)
                tags = {"CredentialId": "key1", "AlternateCredentialId": "key2", "ProviderAddress": account}
                return Seed(tags, SecretValue(keys["key1"]))

            async def logs_in(credential: Credential) -> bool:
                keys = await management.storage_keys(context, account)
                return bool(keys.get(credential.credential_id) == credential.secret.reveal())

            yield ConformanceCase(storage_account_key.StorageAccountKeyRotator, seed, logs_in)


class TestPostgresFlexibleAdmin(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, stack_env: dict[str, str], control: Any) -> ConformanceCase:
        postgres = postgres_of(stack_env)

        async def seed() -> Seed:
            role, password = await postgres.create_role("flexconf")
            server = f"flex-{uuid.uuid4().hex[:8]}"
            await control.create_server("flexibleServers", server, role)
            address = management.server_id(stack_env, "flexibleServers", server)
            return Seed({"CredentialId": role, "ProviderAddress": address}, SecretValue(password))

        async def logs_in(credential: Credential) -> bool:
            return await postgres.logs_in(credential.credential_id, credential.secret.reveal())

        return ConformanceCase(postgres_flexible_admin.PostgresFlexibleAdminRotator, seed, logs_in)


class TestAzureSqlAdmin(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, stack_env: dict[str, str], control: Any) -> ConformanceCase:
        servers: dict[str, str] = {}

        async def seed() -> Seed:
            password = uuid.uuid4().hex + "Aa!"
            server = f"sql-{uuid.uuid4().hex[:8]}"
            login = f"sqladmin{uuid.uuid4().hex[:6]}"
            servers[login] = server
            await control.create_server("sqlServers", server, login, password)
            address = management.server_id(stack_env, "sqlServers", server)
            return Seed({"CredentialId": login, "ProviderAddress": address}, SecretValue(password))

        async def logs_in(credential: Credential) -> bool:
            body = {"login": credential.credential_id, "password": credential.secret.reveal()}
            server = servers[credential.credential_id]
            async with control.http.post(f"{control.base}/servers/sqlServers/{server}/login", json=body) as response:
                return bool((await response.json())["accepted"])

        return ConformanceCase(azure_sql_admin.AzureSqlAdminRotator, seed, logs_in)


class TestEntraAppSecret(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, stack_env: dict[str, str], control: Any) -> ConformanceCase:
        apps: dict[str, str] = {}  # keyId -> appId, to ask the authority for a token

        async def seed() -> Seed:
            object_id, app_id = str(uuid.uuid4()), str(uuid.uuid4())
            key_id, secret = await control.create_application(object_id, app_id)
            apps["app"] = app_id
            address = f"/tenants/{stack_env['MANAGEMENT_TENANT_ID']}/applications/{object_id}"
            return Seed({"CredentialId": key_id, "ProviderAddress": address}, SecretValue(secret))

        async def logs_in(credential: Credential) -> bool:
            from azure.core.exceptions import ClientAuthenticationError
            from azure.identity.aio import ClientSecretCredential

            client = ClientSecretCredential(
                stack_env["MANAGEMENT_TENANT_ID"],
                apps["app"],
                credential.secret.reveal(),
                authority=stack_env["ROTATION_AUTHORITY_HOST"],
                connection_verify=stack_env["KEYVAULT_CA_BUNDLE"],
            )
            try:
                async with client:
                    await client.get_token("https://graph.microsoft.com/.default")
            except ClientAuthenticationError:
                return False
            return True

        return ConformanceCase(entra_app_secret.EntraAppSecretRotator, seed, logs_in)
