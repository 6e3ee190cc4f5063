"""Lock blob names (`blob_lock.lock_blob_name`): one per vault and secret, whatever URL or spelling the job
came with (the blob itself, as Azurite lists it: tests/integration/test_blob_lock.py)."""

from __future__ import annotations

from secret_rotation.blob_lock import lock_blob_name


def test_one_name_per_vault_and_secret() -> None:
    same_vault = (
        "https://kv-app.vault.azure.net",
        "https://KV-APP.vault.azure.net:443/",
        "https://kv-app.privatelink.vaultcore.azure.net",
    )
    assert {lock_blob_name(url, name) for url in same_vault for name in ("Db-Password", "db-password")} == {
        "kv-app/db-password"
    }
    assert lock_blob_name("https://kv-other.vault.azure.net", "db-password") == "kv-other/db-password"
    assert lock_blob_name("https://127.0.0.1:8443", "db-password") == "127.0.0.1:8443/db-password"
    assert lock_blob_name("https://localhost:8443/", "DB-PASSWORD") == "localhost:8443/db-password"
