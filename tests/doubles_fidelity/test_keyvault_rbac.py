"""Per-secret RBAC in the Key Vault double, through the real `azure-keyvault-secrets` aio client.

Sources: Key Vault answers an RBAC denial with 403, error code `Forbidden` and inner error
`ForbiddenByRbac`, its message naming the data action, e.g. (Microsoft Q&A, learn.microsoft.com/answers
/questions/2139767, a `get_secret` with the Python SDK): "(Forbidden) Caller is not authorized to perform
action on resource. Inner error: { "code": "ForbiddenByRbac" }". The data actions per operation are
Microsoft Learn's (Azure role assignment conditions, Key Vault secret actions): Set secret
`Microsoft.KeyVault/vaults/secrets/setSecret/action`, Update secret `.../secrets/update/action`, Get
secret `.../secrets/getSecret/action`; RBAC role assignments can be scoped to one secret ("Azure RBAC
for Key Vault also allows users to have separate permissions on individual keys, secrets, and
certificates", Microsoft Learn, Azure RBAC for Key Vault), which is what makes "may write the secret
but not its pending record" possible.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.pending import pending_name
from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import unique

pytestmark = pytest.mark.integration


def _denial(info: pytest.ExceptionInfo[HttpResponseError]) -> tuple[int | None, str | None, Any, str]:
    error = info.value.error
    assert error is not None
    return info.value.status_code, error.code, error.innererror.get("code"), str(error.message)


async def test_may_write_the_secret_but_not_its_pending_record(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("rbac")
    pending = pending_name(name)
    forbidden = (await kv_double.counts())["forbidden"]
    await kv_double.deny({"secret": pending, "deny": ["write"]})

    await vault.set_secret(name, uuid.uuid4().hex)
    await vault.update_secret_properties(name, tags={"allowed": "yes"})
    with pytest.raises(HttpResponseError) as info:
        await vault.set_secret(pending, uuid.uuid4().hex)
    status, code, inner, message = _denial(info)
    assert (status, code, inner) == (403, "Forbidden", "ForbiddenByRbac")
    assert "Caller is not authorized to perform action on resource." in message
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'" in message
    assert f"/secrets/{pending}'" in message and "DecisionReason: 'DeniedWithNoValidRBAC'" in message
    # Reading is not denied: the record simply does not exist (nothing was written).
    with pytest.raises(ResourceNotFoundError):
        await vault.get_secret(pending)
    assert (await kv_double.counts())["forbidden"] - forbidden == 1


async def test_may_write_the_pending_record_but_not_the_secret(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("rbac")
    await vault.set_secret(name, uuid.uuid4().hex)
    # Names are case-insensitive in Key Vault, so a rule for the upper-case name covers the secret.
    await kv_double.deny({"secret": name.upper(), "deny": ["set", "update"]})

    await vault.set_secret(pending_name(name), uuid.uuid4().hex)
    with pytest.raises(HttpResponseError) as set_info:
        await vault.set_secret(name, uuid.uuid4().hex)
    with pytest.raises(HttpResponseError) as update_info:
        await vault.update_secret_properties(name, tags={"changed": "no"})
    assert _denial(set_info)[:3] == (403, "Forbidden", "ForbiddenByRbac")
    status, _, inner, message = _denial(update_info)
    assert (status, inner) == (403, "ForbiddenByRbac")
    assert "Action: 'Microsoft.KeyVault/vaults/secrets/update/action'" in message
    # The identity may still read it, and nothing changed.
    assert (await vault.get_secret(name)).properties.tags is None


async def test_read_denial_comes_before_the_lookup(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("rbac")
    await kv_double.deny({"secret": name, "deny": ["get"]})
    # Key Vault authorizes the data action before it looks the secret up: 403 even though it does not exist.
    with pytest.raises(HttpResponseError) as info:
        await vault.get_secret(name)
    status, _, inner, message = _denial(info)
    assert (status, inner) == (403, "ForbiddenByRbac")
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in message
    await vault.set_secret(name, uuid.uuid4().hex)  # writing was not denied


async def test_a_rule_for_every_secret_covers_the_vault_listing(vault: SecretClient, kv_double: KeyVaultDouble):
    """REST spec GetSecrets (stable/2025-07-01/secrets.json): "The Get Secrets operation is applicable to
    the entire vault ... This operation requires the secrets/list permission", so it is authorized at the
    vault's scope, not a secret's. A rule for "*" stands for every secret and the vault."""
    name = unique("rbac")
    await vault.set_secret(name, uuid.uuid4().hex)
    await kv_double.deny({"secret": "*", "deny": ["list", "set"]})
    with pytest.raises(HttpResponseError) as listing:
        [p async for p in vault.list_properties_of_secrets()]
    status, _, inner, message = _denial(listing)
    assert (status, inner) == (403, "ForbiddenByRbac")
    assert "Microsoft.KeyVault/vaults/secrets/readMetadata/action" in message and "/secrets/'" not in message
    with pytest.raises(HttpResponseError):
        await vault.set_secret(unique("rbac"), uuid.uuid4().hex)
    await vault.get_secret(name)  # not denied


async def test_rbac_rules_are_per_vault_and_validated(kv_double: KeyVaultDouble, stack_env: dict[str, str]):
    report = await kv_double.deny({"secret": "a", "deny": ["write", "get"]}, {"secret": "A", "deny": ["delete"]})
    assert report == {"rules": [{"secret": "a", "deny": ["delete", "get", "set", "update"]}]}
    other = KeyVaultDouble(kv_double.http, kv_double.management, stack_env["KEYVAULT_URL_2"])
    assert await other.call("GET", "rbac") == {"rules": []}
    for bad in ({"secret": "a", "deny": ["explode"]}, {"secret": "", "deny": ["get"]}, {"secret": "a", "deny": []}):
        body = await kv_double.call("PUT", "rbac", {"rules": [bad]}, expect=400)
        assert body["error"]["code"] == "BadParameter"
    async with kv_double.http.put(f"{kv_double.management}/rbac", json={"rules": []}) as response:
        assert response.status == 400  # a setting of one vault: the vault must be named
