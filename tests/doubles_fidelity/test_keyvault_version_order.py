"""Version listings in the Key Vault double: version-id order, one-second timestamps, missing secrets.

Sources: the REST spec types `created` and `updated` as `"type": "integer", "format": "unixtime"`
(Attributes in specification/keyvault/data-plane/Microsoft.KeyVault/stable/2025-07-01/secrets.json), so
two versions created in the same second carry the same `created`. Versions are paged in version-id order:
the spec's GetSecretVersions example (…/stable/2025-06-01/examples/GetSecretVersions-example.json, a
recorded answer with maxresults=1) returns version 11a536561da34d6b8b452d880df58f3a, and its `$skiptoken`
decodes to the storage marker `secret/LISTSECRETVERSIONSTEST/1D4962B1ED784DBF899F3332E4768B70`: the next
page starts at the next version id in key order, whatever the creation order. A versionless GET returns
"the latest version" (GetSecret's secret-version parameter), the one created last. Listing the versions
of a secret that does not exist yields nothing, no error: the Azure SDK for JavaScript's recorded test
"can list secret versions (non existing)" (Azure/azure-sdk-for-js sdk/keyvault/keyvault-secrets/test/
public/list.spec.ts) counts 0 versions.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from azure.keyvault.secrets.aio import SecretClient

from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import unique

pytestmark = pytest.mark.integration


async def _raw_versions(kv_double: KeyVaultDouble, name: str, page_size: int) -> list[Any]:
    """Every listed item, following nextLink pages, through raw HTTPS (the SDK converts the timestamps)."""
    items: list[Any] = []
    status, body, _ = await kv_double.data_plane("GET", f"/secrets/{name}/versions?maxresults={page_size}")
    while True:
        assert status == 200
        items += body["value"]
        if not body.get("nextLink"):
            return items
        status, body, _ = await kv_double.data_plane("GET", body["nextLink"])


async def test_versions_are_listed_in_id_order_with_second_timestamps(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("order")
    created = [str((await vault.set_secret(name, uuid.uuid4().hex)).properties.version) for _ in range(6)]
    listed = [str(item["id"]).rsplit("/", 1)[1] for item in await _raw_versions(kv_double, name, page_size=2)]
    assert listed == sorted(created)
    items = await _raw_versions(kv_double, name, page_size=25)
    stamps = [item["attributes"] for item in items]
    assert all(isinstance(a["created"], int) and isinstance(a["updated"], int) for a in stamps)
    # The SDK sees the same order; "latest" is still the version created last, not the last listed.
    assert [p.version async for p in vault.list_properties_of_secret_versions(name)] == sorted(created)
    assert (await vault.get_secret(name)).properties.version == created[-1]


async def test_versions_created_in_one_second_share_created(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("order")
    # Writes take milliseconds here; within a few writes two land in the same second.
    for _ in range(10):
        await vault.set_secret(name, uuid.uuid4().hex)
        created = [p.created_on async for p in vault.list_properties_of_secret_versions(name)]
        if len(set(created)) < len(created):
            break
    assert len(set(created)) < len(created), "no two versions shared a second"
    assert all(c is not None and c.microsecond == 0 for c in created)


async def test_versions_of_a_missing_secret_are_an_empty_list(vault: SecretClient, kv_double: KeyVaultDouble):
    name = unique("missing")
    status, body, _ = await kv_double.data_plane("GET", f"/secrets/{name}/versions")
    assert (status, body["value"], body.get("nextLink")) == (200, [], None)
    assert [p async for p in vault.list_properties_of_secret_versions(name)] == []
