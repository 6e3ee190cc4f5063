"""Disabled secret versions in the Key Vault double: unreadable, but listed with their attributes.

Sources: the Azure SDK for JavaScript's recording of a live session
(Azure/azure-sdk-for-js sdk/keyvault/keyvault-secrets/recordings/node/secret_client__create_read_update_and_
delete_operations/recording_cant_get_a_disabled_secret.js) has Key Vault answer a read of a disabled
secret with 403 `{"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled
secret.","innererror":{"code":"SecretDisabled"}}}`. Listing versions needs no read of a value: REST spec
GetSecretVersions, "The full secret identifier and attributes are provided in the response. No values
are returned for the secrets." (specification/keyvault/data-plane/Microsoft.KeyVault/stable/2025-07-01/
secrets.json), and a SecretItem carries `attributes.enabled`, `tags` and `contentType`.
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets.aio import SecretClient

from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import unique

pytestmark = pytest.mark.integration


async def test_a_disabled_version_is_forbidden_with_secret_disabled(vault: SecretClient):
    name = unique("disabled")
    older = await vault.set_secret(name, uuid.uuid4().hex)
    newest = await vault.set_secret(name, uuid.uuid4().hex)
    await vault.update_secret_properties(name, newest.properties.version, enabled=False)
    for version in (None, newest.properties.version):  # versionless = the newest version, disabled
        with pytest.raises(HttpResponseError) as info:
            await vault.get_secret(name, version)
        error = info.value.error
        assert info.value.status_code == 403 and error is not None
        assert (error.code, error.message) == ("Forbidden", "Operation get is not allowed on a disabled secret.")
        assert error.innererror.get("code") == "SecretDisabled"
    # The other version stays readable.
    assert (await vault.get_secret(name, older.properties.version)).properties.enabled is True


async def test_listing_versions_shows_enabled_and_tags_without_values(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("disabled")
    first = await vault.set_secret(name, uuid.uuid4().hex, tags={"RotationStep": "done"}, content_type="text/plain")
    await vault.update_secret_properties(name, first.properties.version, enabled=False)
    await vault.set_secret(name, uuid.uuid4().hex, tags={"RotationStep": "pending"})

    listed = {p.version: p async for p in vault.list_properties_of_secret_versions(name)}
    assert listed[first.properties.version].enabled is False
    assert listed[first.properties.version].tags == {"RotationStep": "done"}
    assert listed[first.properties.version].content_type == "text/plain"
    assert sorted(str(p.enabled) for p in listed.values()) == ["False", "True"]

    status, body, _ = await kv_double.data_plane("GET", f"/secrets/{name}/versions")
    assert status == 200 and len(body["value"]) == 2
    assert all("value" not in item and set(item) >= {"id", "attributes", "tags"} for item in body["value"])
