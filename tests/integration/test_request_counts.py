"""Key Vault requests of one rotation per pattern, counted at the double, against docs/protocol.md.

The documented minimum ("Key Vault requests per rotation") is read from the doc itself, so the doc and
the engine cannot drift apart silently. The worker alone is counted (the job is delivered straight to
the queue function, as private deployments do), from a secret that has never been rotated.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.core.pipeline import PipelineRequest
from azure.core.rest import HttpRequest
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.blob.aio import ContainerClient

from secret_rotation.blob_lock import BlobLeaseLock
from secret_rotation.retries import RetryPolicy
from tests.support.events import key_vault_event
from tests.support.host import LocalFunctionsHost
from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import Postgres, seed_dual_secret, seed_role_secret, unique

pytestmark = pytest.mark.integration

PROTOCOL = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
COLUMNS = ("get", "list_versions", "update", "set", "total")


def documented(pattern: str) -> dict[str, int]:
    """The row `| <pattern> | get | list versions | update | set (CREATE) | total |` of docs/protocol.md."""
    row = re.search(rf"^\| {pattern} \|((?: *\d+ *\|){{5}})", PROTOCOL.read_text(), re.MULTILINE)
    assert row, f"docs/protocol.md has no request row for {pattern}"
    return dict(zip(COLUMNS, (int(cell) for cell in row.group(1).split("|")[:-1]), strict=True))


@pytest.mark.parametrize("pattern", ["single", "dual"])
async def test_one_rotation_makes_the_documented_key_vault_requests(
    pattern: str,
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    kv_double: KeyVaultDouble,
) -> None:
    if pattern == "single":
        seeded = await seed_role_secret(vault, postgres, leak_check, "count")
        name, version = seeded.name, seeded.version
    else:
        dual = await seed_dual_secret(vault, postgres, leak_check, "count-dual")
        name, version = dual.name, dual.version
    url = stack_environ["KEYVAULT_URL"]
    event = key_vault_event(url, name, version)
    await kv_double.call("POST", "requests/reset")

    await host.deliver_queue_message(json.dumps(event))

    counts = await kv_double.counts()
    leak_check.append((await vault.get_secret(name)).value or "")
    measured = {column: counts.get(column, 0) for column in COLUMNS}
    assert measured == documented(pattern), measured
    assert measured["set"] == 2, "two CREATEs: the pending record's one version and the promotion"


def _count_uploads(counter: list[str]) -> Callable[[PipelineRequest[HttpRequest]], None]:
    """An azure-core `raw_request_hook`: records blob uploads (a PUT that is no lease or container call)."""

    def hook(request: PipelineRequest[HttpRequest]) -> None:
        http = request.http_request
        if http.method == "PUT" and "comp=" not in http.url and "restype=" not in http.url:
            counter.append(http.url)

    return hook


async def test_the_lock_blob_is_uploaded_only_when_missing(stack_environ: dict[str, str]) -> None:
    uploads: list[str] = []
    container = ContainerClient.from_connection_string(
        stack_environ["AzureWebJobsStorage"], unique("locks"), raw_request_hook=_count_uploads(uploads)
    )
    lock = BlobLeaseLock(container, RetryPolicy())
    try:
        for _ in range(3):
            async with lock.hold(stack_environ["KEYVAULT_URL"], "counted-secret"):
                pass
    finally:
        await container.delete_container()
        await lock.close()
    assert len(uploads) == 1, "one upload when the blob was missing, none for the later rotations"
