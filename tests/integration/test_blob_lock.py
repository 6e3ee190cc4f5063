"""The per-secret lock's blob, as Azurite lists it: one readable name per vault and secret.

Microsoft (Naming and Referencing Containers, Blobs, and Metadata): blob names "are passed to the Blob
service within a URL. Certain characters must be percent-encoded ... This encoding occurs automatically
when you use the Azure Storage client libraries." So the name the lock gives the SDK is the name stored.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from azure.storage.blob.aio import ContainerClient

from secret_rotation.blob_lock import BlobLeaseLock
from secret_rotation.errors import LockedError
from secret_rotation.retries import RetryPolicy
from tests.support.stack import unique

pytestmark = pytest.mark.integration


async def test_the_lock_blob_is_named_vault_host_and_port_then_the_secret_lowercased(
    stack_environ: dict[str, str],
) -> None:
    vault_url = stack_environ["KEYVAULT_URL"]
    authority = urlsplit(vault_url).netloc  # the local vault answers on 127.0.0.1:<port>, not 443
    container = ContainerClient.from_connection_string(stack_environ["AzureWebJobsStorage"], unique("locks"))
    lock = BlobLeaseLock(container, RetryPolicy())
    try:
        async with lock.hold(vault_url, "Db-Password"):
            # Key Vault secret names are case-insensitive, and so is a vault URL's host: one secret, one lock.
            with pytest.raises(LockedError):
                async with lock.hold(vault_url.upper() + "/", "DB-PASSWORD"):
                    pass
        async with lock.hold(vault_url, "db-password-2"):
            pass
        names = [blob.name async for blob in container.list_blobs()]
    finally:
        await container.delete_container()
        await lock.close()
    assert sorted(names) == [f"{authority}/db-password", f"{authority}/db-password-2"], names
