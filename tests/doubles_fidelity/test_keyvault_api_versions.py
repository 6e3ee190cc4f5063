"""The Key Vault double accepts api-version 2025-07-01 alongside 7.2-7.6; the client's version is a setting.

Sources: Microsoft's REST specification publishes the secrets API as stable version 2025-07-01
(specification/keyvault/data-plane/Microsoft.KeyVault/stable/2025-07-01/secrets.json, "version":
"2025-07-01"), with the same secret operations and shapes as 7.6; azure-keyvault-secrets 4.12
lists it in its ApiVersion enum (V2025_07_01). An unrecognized version answers 400 `BadParameter`
naming the latest supported one (the double's existing behaviour, tests/integration/test_local_stack.py).
The engine's client sends the version of `KEYVAULT_API_VERSION` (secret_rotation/settings.py).
"""

from __future__ import annotations

import uuid

import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.keyvault_store import KeyVaultStores
from secret_rotation.retries import RetryPolicy
from secret_rotation.secret_value import SecretValue
from secret_rotation.settings import Settings
from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import unique

pytestmark = pytest.mark.integration

NEW = "2025-07-01"


async def test_the_sdk_round_trips_with_2025_07_01(identity_env: dict[str, str], kv_double: KeyVaultDouble):
    name = unique("apiver")
    await kv_double.reset_counts()
    async with (
        ManagedIdentityCredential() as credential,
        SecretClient(
            identity_env["KEYVAULT_URL"],
            credential,
            api_version=NEW,
            verify_challenge_resource=False,
            connection_verify=identity_env["KEYVAULT_CA_BUNDLE"],
        ) as client,
    ):
        stored = await client.set_secret(name, uuid.uuid4().hex, tags={"v": NEW}, content_type="text/plain")
        got = await client.get_secret(name)
        assert (got.properties.version, got.properties.tags) == (stored.properties.version, {"v": NEW})
        await client.update_secret_properties(name, enabled=False)
        assert [p.enabled async for p in client.list_properties_of_secret_versions(name)] == [False]
    assert set((await kv_double.counts())["apiVersions"]) == {NEW}


async def test_unknown_versions_are_refused_naming_the_latest(kv_double: KeyVaultDouble):
    status, body, _ = await kv_double.data_plane("GET", "/secrets", api_version="2025-08-01")
    assert (status, body["error"]["code"]) == (400, "BadParameter")
    assert f"latest supported version ({NEW})" in body["error"]["message"]
    for version in ("7.2", "7.6", NEW):
        assert (await kv_double.data_plane("GET", "/secrets", api_version=version))[0] == 200


async def test_the_engine_client_sends_the_configured_version(stack_environ: dict[str, str], kv_double: KeyVaultDouble):
    settings = Settings.from_env({**stack_environ, "KEYVAULT_API_VERSION": NEW})
    await kv_double.reset_counts()
    async with ManagedIdentityCredential(client_id=stack_environ["AZURE_CLIENT_ID"]) as credential:
        stores = KeyVaultStores(settings, credential, RetryPolicy(attempts=1))
        try:
            store = stores.for_vault(stack_environ["KEYVAULT_URL"])
            name = unique("apiver")
            await store.set(name, SecretValue(uuid.uuid4().hex), tags={}, content_type="text/plain")
            assert await store.get(name) is not None
        finally:
            await stores.close()
    counts = await kv_double.counts()
    # Every authenticated request carried the configured version (a bearer challenge is answered before).
    assert counts["apiVersions"] == {NEW: counts["set"] + counts["get"] - counts["unauthorized"]}
