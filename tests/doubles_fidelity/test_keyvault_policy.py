"""Azure Policy "Deny" on a vault's secrets in the Key Vault double, through the real aio SDK client.

Sources: Microsoft Learn, "Integrate Azure Key Vault with Azure Policy": with the Deny effect "the policy
will block the creation of new components ... as well as block new versions of existing components that
do not comply with the policy definition. Existing non-compliant resources within a key vault are not
affected." The built-in secret policies it lists include "Secrets should have content type set" and "Key
Vault secrets should have an expiration date". The answer is 403 `Forbidden`; its inner code is
`ForbiddenByPolicy`, the code Key Vault uses for policy-based denials of data-plane operations (recorded
e.g. for a purge the vault's access policy does not grant: `{"code": "Forbidden", ..., "innererror":
{"code": "ForbiddenByPolicy"}}`). Microsoft publishes no recorded Azure Policy data-plane denial, so the
message text is this double's own: it names the operation and the policy assignments.
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


def _in(days: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=days)


async def test_new_versions_need_content_type_and_expiry(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("policy")
    report = await kv_double.deny_by_policy(content_type=True, expiry=True)
    assert report["assignments"] == [
        "Secrets should have content type set",
        "Key Vault secrets should have an expiration date",
    ]
    forbidden = (await kv_double.counts())["forbidden"]
    message = ""
    for kwargs in ({}, {"content_type": "text/plain"}, {"expires_on": _in(30)}):
        with pytest.raises(HttpResponseError) as info:
            await vault.set_secret(name, uuid.uuid4().hex, **kwargs)
        error = info.value.error
        assert info.value.status_code == 403 and error is not None and error.code == "Forbidden"
        assert error.innererror.get("code") == "ForbiddenByPolicy"
        message = str(error.message)
    # The last attempt had an expiry: only the content-type assignment is named.
    assert "content type" in message and "expiration" not in message
    with pytest.raises(ResourceNotFoundError):
        await vault.get_secret(name)  # nothing was written

    stored = await vault.set_secret(name, uuid.uuid4().hex, content_type="text/plain", expires_on=_in(30))
    assert stored.properties.content_type == "text/plain"
    assert (await kv_double.counts())["forbidden"] - forbidden == 3


async def test_existing_versions_stay_updatable(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("policy")
    first = await vault.set_secret(name, uuid.uuid4().hex)  # before the policy: no content type, no expiry
    await kv_double.deny_by_policy(expiry=True)
    # Tags and enabled change on the non-compliant existing version: "existing ... resources are not affected".
    updated = await vault.update_secret_properties(name, first.properties.version, tags={"a": "b"}, enabled=False)
    assert (updated.tags, updated.enabled) == ({"a": "b"}, False)
    # Only the expiry is required here: a new version with one but without content type is created.
    await vault.set_secret(name, uuid.uuid4().hex, expires_on=_in(1))


async def test_policy_is_per_vault_and_validated(kv_double: KeyVaultDouble, stack_env: dict[str, str]):
    await kv_double.deny_by_policy(content_type=True)
    other = KeyVaultDouble(kv_double.http, kv_double.management, stack_env["KEYVAULT_URL_2"])
    assert (await other.call("GET", "policy"))["assignments"] == []
    for bad in ({"require_expiry": "yes"}, {"unknown": True}, ["require_expiry"]):
        body = await kv_double.call("PUT", "policy", bad, expect=400)
        assert body["error"]["code"] == "BadParameter"
    assert (await kv_double.call("DELETE", "policy"))["assignments"] == []
