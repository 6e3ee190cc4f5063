"""Soft delete and purge protection in the Key Vault double, through the real aio SDK client.

Sources: REST spec (specification/keyvault/data-plane/Microsoft.KeyVault/stable/2025-07-01/secrets.json):
DeleteSecret answers a DeletedSecretBundle with `recoveryId`, `deletedDate` and `scheduledPurgeDate`;
GetDeletedSecrets / GetDeletedSecret list and read deleted secrets; RecoverDeletedSecret "Recovers the
deleted secret to the latest version"; PurgeDeletedSecret answers 204; DeletionRecoveryLevel
`Recoverable+Purgeable` permits purge, `Recoverable` is "recoverable without the possibility for
immediate and permanent deletion (i.e. purge)" - a vault with purge protection. While a secret is
deleted its name cannot be reused; Key Vault answers a SET with 409: "(Conflict) Secret <secret-name> is
currently in a deleted but recoverable state, and its name cannot be reused; in this state, the secret
can only be recovered or purged. Inner error: { "code": "ObjectIsDeletedButRecoverable" }" (az CLI
output of a real vault). A purge under purge protection answers 403 `Forbidden`: 'Operation "purge" is
not allowed because purge protection is enabled for this vault. Key Vault service will automatically
purge it after the retention period has passed.' (recorded by the Key Vault Go SDK through Terraform:
Status=403 Code="Forbidden").
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import unique

pytestmark = pytest.mark.integration


async def _conflict(vault: SecretClient, name: str) -> HttpResponseError:
    with pytest.raises(HttpResponseError) as info:
        await vault.set_secret(name, uuid.uuid4().hex)
    return info.value


async def test_delete_keeps_the_name_reserved_until_recovered(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("softdel")
    versions = [(await vault.set_secret(name, uuid.uuid4().hex, tags={"n": str(i)})).properties for i in range(2)]

    deleted = await vault.delete_secret(name)
    assert deleted.recovery_id == f"{kv_double.vault}/deletedsecrets/{name}"
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert deleted.scheduled_purge_date - deleted.deleted_date == dt.timedelta(days=90)
    assert (await vault.get_deleted_secret(name)).properties.tags == {"n": "1"}
    assert name in [d.name async for d in vault.list_deleted_secrets()]
    with pytest.raises(ResourceNotFoundError):
        await vault.get_secret(name)
    assert name not in [p.name async for p in vault.list_properties_of_secrets()]

    error = await _conflict(vault, name)
    assert error.status_code == 409 and error.error is not None and error.error.code == "Conflict"
    assert error.error.innererror.get("code") == "ObjectIsDeletedButRecoverable"
    assert f"Secret {name} is currently in a deleted but recoverable state" in str(error.error.message)

    recovered = await vault.recover_deleted_secret(name)
    assert recovered.version == versions[-1].version  # "recovers the deleted secret to the latest version"
    assert len([p async for p in vault.list_properties_of_secret_versions(name)]) == 2
    with pytest.raises(ResourceNotFoundError):
        await vault.get_deleted_secret(name)
    await vault.set_secret(name, uuid.uuid4().hex)  # the name is usable again


async def test_purge_frees_the_name_unless_purge_protection(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("softdel")
    await vault.set_secret(name, uuid.uuid4().hex)
    assert (await kv_double.purge_protection(True)) == {"enabled": True, "recoveryLevel": "Recoverable"}
    assert (await vault.get_secret(name)).properties.recovery_level == "Recoverable"
    await vault.delete_secret(name)
    with pytest.raises(HttpResponseError) as info:
        await vault.purge_deleted_secret(name)
    error = info.value.error
    assert info.value.status_code == 403 and error is not None and error.code == "Forbidden"
    assert str(error.message).startswith('Operation "purge" is not allowed because purge protection is enabled')
    assert (await _conflict(vault, name)).status_code == 409  # still reserved

    await kv_double.purge_protection(False)  # Azure never allows this; the double does, to reset a vault
    await vault.purge_deleted_secret(name)
    with pytest.raises(ResourceNotFoundError):
        await vault.get_deleted_secret(name)
    await vault.set_secret(name, uuid.uuid4().hex)
    assert len([p async for p in vault.list_properties_of_secret_versions(name)]) == 1  # a new secret


async def test_deleted_secret_operations_on_missing_names(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("softdel")
    for call in (vault.get_deleted_secret, vault.purge_deleted_secret, vault.delete_secret):
        with pytest.raises(ResourceNotFoundError):
            await call(name)
    # Recorded (Azure SDK for JS, recording "can recover a deleted secret (non existing)"): the recover of a
    # missing name answers the live secret's 404 text; GET /deletedsecrets/{name} says "Deleted Secret not found".
    status, body, _ = await kv_double.data_plane("POST", f"/deletedsecrets/{name}/recover")
    assert (status, body["error"]["code"]) == (404, "SecretNotFound")
    assert body["error"]["message"].startswith(f"A secret with (name/id) {name} was not found in this key vault.")
    status, body, _ = await kv_double.data_plane("GET", f"/deletedsecrets/{name}")
    assert (status, body["error"]["message"]) == (404, f"Deleted Secret not found: {name}")
