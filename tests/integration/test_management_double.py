"""What the management double enforces and how it answers, each pinned to its source, plus fault
injection through the stack's fault proxy in front of it (the same proxy as for Key Vault)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from rotators.storage_account_key import StorageAccountKeyRotator
from secret_rotation.rotator import ApplyRequest, Credential
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.faults import Faults
from tests.support.management import ManagementControl, provider_context, storage_keys

pytestmark = pytest.mark.integration

STORAGE_API = "2026-09-01"


@pytest.fixture
async def token(stack_environ: dict[str, str]) -> AsyncIterator[dict[str, str]]:
    """Bearer tokens from the stack's managed-identity endpoint, for ARM and for Graph."""
    from azure.identity.aio import ManagedIdentityCredential

    async with ManagedIdentityCredential(client_id=stack_environ["AZURE_CLIENT_ID"]) as credential:
        arm = await credential.get_token("https://management.azure.com/.default")
        graph = await credential.get_token("https://graph.microsoft.com/.default")
        vault = await credential.get_token("https://vault.azure.net/.default")
        yield {"arm": arm.token, "graph": graph.token, "vault": vault.token}


async def _call(
    http: aiohttp.ClientSession, method: str, url: str, bearer: str | None, body: Any = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    async with http.request(method, url, headers=headers, json=body) as response:
        return response.status, await response.json()


async def test_arm_requires_a_token_for_its_audience_and_answers_in_arms_error_shape(
    http: aiohttp.ClientSession, stack_env: dict[str, str], token: dict[str, str]
) -> None:
    # Azure Resource Manager errors: {"error": {"code", "message"}} (ErrorResponse of the ARM common
    # types); a missing or invalid token is 401 AuthenticationFailed.
    account = stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    url = f"{stack_env['ROTATION_ARM_ENDPOINT']}{account}/listKeys?api-version={STORAGE_API}"
    for bearer in (None, token["vault"], token["graph"]):
        status, body = await _call(http, "POST", url, bearer)
        assert (status, body["error"]["code"]) == (401, "AuthenticationFailed")
    status, body = await _call(http, "POST", url, token["arm"])
    assert status == 200 and {k["keyName"] for k in body["keys"]} == {"key1", "key2"}


@pytest.mark.parametrize(
    ("suffix", "status", "code"),
    [
        ("/listKeys", 400, "MissingApiVersionParameter"),
        ("/listKeys?api-version=2000-01-01", 400, "InvalidApiVersionParameter"),
        ("x/listKeys?api-version=" + STORAGE_API, 404, "ResourceNotFound"),
    ],
)
async def test_arm_checks_api_version_and_resource_id(
    http: aiohttp.ClientSession, stack_env: dict[str, str], token: dict[str, str], suffix: str, status: int, code: str
) -> None:
    # ARM's resource provider contract: every request carries api-version, a missing or unknown one is
    # refused with 400; an unknown resource is 404 ResourceNotFound.
    url = stack_env["ROTATION_ARM_ENDPOINT"] + stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"] + suffix
    assert (await _call(http, "POST", url, token["arm"]))[0] == status
    assert (await _call(http, "POST", url, token["arm"]))[1]["error"]["code"] == code
    other_group = stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"].replace("rotation-local", "nowhere")
    url = f"{stack_env['ROTATION_ARM_ENDPOINT']}{other_group}/listKeys?api-version={STORAGE_API}"
    assert (await _call(http, "POST", url, token["arm"]))[1]["error"]["code"] == "ResourceGroupNotFound"


async def test_graph_requires_a_graph_token_and_answers_in_graphs_error_shape(
    http: aiohttp.ClientSession, stack_env: dict[str, str], token: dict[str, str]
) -> None:
    # learn.microsoft.com/graph/errors: "Errors in Microsoft Graph are returned using standard HTTP status
    # codes, and a JSON error response object" with code, message and innerError (date, request-id).
    url = f"{stack_env['ROTATION_GRAPH_ENDPOINT']}/v1.0/applications/00000000-0000-0000-0000-000000000000"
    status, body = await _call(http, "GET", url, token["arm"])
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    status, body = await _call(http, "GET", url, token["graph"])
    assert (status, body["error"]["code"]) == (404, "Request_ResourceNotFound")
    assert {"date", "request-id"} <= set(body["error"]["innerError"])


async def test_a_throttled_regenerate_key_through_the_fault_proxy_still_regenerates_once(
    http: aiohttp.ClientSession, stack_environ: dict[str, str], leak_check: list[str]
) -> None:
    # learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling: a throttled
    # request gets 429 with Retry-After; azure-core's retry policy honours it.
    faults = Faults(http, stack_environ["FAULTS_MANAGEMENT_CONTROL"])
    control = ManagementControl(http, stack_environ)
    await faults.reset_stats()  # the proxy outlives test sessions
    await faults.schedule(
        {
            "match": {"method": "POST", "path_regex": "/regenerateKey$"},
            "action": "status",
            "status": 429,
            "retry_after": 1,
            "times": 1,
        }
    )
    address = stack_environ["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    try:
        async with provider_context(stack_environ, arm_endpoint=stack_environ["ARM_ENDPOINT_FAULTY"]) as context:
            rotator = StorageAccountKeyRotator(context)
            before_keys, before = await storage_keys(context, address), await control.regenerations()
            leak_check.extend(before_keys.values())
            config = RotationConfig("storage-account-key", "key1", address, 60)
            current = Credential("key1", SecretValue(before_keys["key1"]))
            issued = await rotator.apply(ApplyRequest(config, Credential("key2", SecretValue("x")), current))
            leak_check.append(issued.secret.reveal())
            assert await rotator.accepts(config, issued)
        stats = await faults.stats()
    finally:
        await faults.clear()
    assert stats["injected"].get("429") == 1
    assert await control.regenerations() - before == 1


async def test_a_long_running_update_is_polled_through_the_fault_proxy_despite_a_503(
    http: aiohttp.ClientSession, stack_environ: dict[str, str], leak_check: list[str]
) -> None:
    # learn.microsoft.com/azure/azure-resource-manager/management/async-operations: an asynchronous
    # operation "initially returns an HTTP status code of either: 201 (Created) 202 (Accepted)";
    # "Azure-AsyncOperation - URL for checking the ongoing status of the operation. If your operation
    # returns this value, use it to track the status"; "Retry-After - The number of seconds to wait before
    # checking the status". The double answers InProgress on the first poll, so the SDK's poller must poll.
    import uuid

    from rotators.postgres_flexible_admin import PostgresFlexibleAdminRotator
    from tests.support.management import server_id
    from tests.support.stack import Postgres

    postgres = Postgres(stack_environ["PG_ADMIN_DSN"], stack_environ["PGHOST"], int(stack_environ["PGPORT"]))
    role, password = await postgres.create_role("flexfault")
    server = f"flex-{uuid.uuid4().hex[:8]}"
    control = ManagementControl(http, stack_environ)
    await control.create_server("flexibleServers", server, role)
    faults = Faults(http, stack_environ["FAULTS_MANAGEMENT_CONTROL"])
    await faults.reset_stats()
    await faults.schedule(
        {
            "match": {"method": "GET", "path_regex": "/azureAsyncOperation/"},
            "action": "status",
            "status": 503,
            "times": 1,
        }
    )
    try:
        async with provider_context(stack_environ, arm_endpoint=stack_environ["ARM_ENDPOINT_FAULTY"]) as context:
            rotator = PostgresFlexibleAdminRotator(context)
            config = RotationConfig(
                "postgres-flexible-admin", role, server_id(stack_environ, "flexibleServers", server), 60
            )
            new = Credential(role, rotator.generate(config, role))
            leak_check.extend([password, new.secret.reveal()])
            await rotator.apply(ApplyRequest(config, new, Credential(role, SecretValue(password))))
        stats = await faults.stats()
    finally:
        await faults.clear()
    assert stats["injected"].get("503") == 1
    assert await control.password_updates("flexibleServers", server) == 1
    assert await postgres.logs_in(role, new.secret.reveal()) and not await postgres.logs_in(role, password)


async def test_regenerate_key_names_key1_or_key2_and_azurite_then_accepts_exactly_the_listed_keys(
    http: aiohttp.ClientSession, stack_environ: dict[str, str], token: dict[str, str], leak_check: list[str]
) -> None:
    # Microsoft.Storage storage.json, StorageAccountRegenerateKeyParameters.keyName: "The name of storage
    # keys that want to be regenerated, possible values are key1, key2, kerb1, kerb2." (kerb keys exist
    # only with Active Directory Kerberos enabled, which the double's account is not).
    base = f"{stack_environ['ROTATION_ARM_ENDPOINT']}{stack_environ['MANAGEMENT_STORAGE_ACCOUNT_ID']}"
    status, body = await _call(
        http, "POST", f"{base}/regenerateKey?api-version={STORAGE_API}", token["arm"], {"keyName": "key3"}
    )
    assert status == 400 and body["error"]["code"] == "InvalidValuesForRequestParameters"
    status, body = await _call(
        http, "POST", f"{base}/regenerateKey?api-version={STORAGE_API}", token["arm"], {"keyName": "key2"}
    )
    assert status == 200
    listed = {k["keyName"]: k["value"] for k in body["keys"]}
    leak_check.extend(listed.values())
    async with provider_context(stack_environ) as context:
        rotator = StorageAccountKeyRotator(context)
        config = RotationConfig("storage-account-key", "key1", stack_environ["MANAGEMENT_STORAGE_ACCOUNT_ID"], 60)
        for name, value in listed.items():
            assert await rotator.accepts(config, Credential(name, SecretValue(value))), name


async def test_graph_add_and_remove_password_and_the_token_authority(
    http: aiohttp.ClientSession, stack_environ: dict[str, str], token: dict[str, str], leak_check: list[str]
) -> None:
    import uuid

    # learn.microsoft.com/graph/api/resources/passwordcredential: "hint: Contains the first three
    # characters of the password. Read-only." and secretText is returned by addPassword only
    # ("Read-only; Contains the strong passwords generated by Microsoft Entra ID ... returned only on
    # creation"); removePassword answers 204 No Content.
    object_id, app_id = str(uuid.uuid4()), str(uuid.uuid4())
    await ManagementControl(http, stack_environ).create_application(object_id, app_id)
    app = f"{stack_environ['ROTATION_GRAPH_ENDPOINT']}/v1.0/applications/{object_id}"
    status, added = await _call(
        http, "POST", f"{app}/addPassword", token["graph"], {"passwordCredential": {"displayName": "x"}}
    )
    leak_check.append(added["secretText"])
    assert status == 200 and added["hint"] == added["secretText"][:3] and uuid.UUID(added["keyId"])
    status, read = await _call(http, "GET", app, token["graph"])
    assert status == 200 and read["appId"] == app_id
    assert [p["secretText"] for p in read["passwordCredentials"]] == [None, None]

    # learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow: POST
    # /{tenant}/oauth2/v2.0/token with grant_type=client_credentials, client_id, client_secret, scope;
    # a wrong secret is 401 invalid_client (AADSTS7000215).
    authority = f"{stack_environ['ROTATION_AUTHORITY_HOST']}/{stack_environ['MANAGEMENT_TENANT_ID']}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "client_id": app_id, "scope": "https://graph.microsoft.com/.default"}
    async with http.post(authority, data={**form, "client_secret": added["secretText"]}) as response:
        assert response.status == 200 and (await response.json())["token_type"] == "Bearer"
    async with http.post(authority, data={**form, "client_secret": "wrong"}) as response:
        assert response.status == 401 and (await response.json())["error"] == "invalid_client"

    headers = {"Authorization": f"Bearer {token['graph']}"}
    async with http.post(f"{app}/removePassword", headers=headers, json={"keyId": added["keyId"]}) as response:
        assert response.status == 204
    async with http.post(authority, data={**form, "client_secret": added["secretText"]}) as response:
        assert response.status == 401, "a removed password gets no token"
