"""Cold start and connection pooling in the composition root: each client is built on first use, intake
builds none of the worker's parts, and importing the app imports no SDK (pool sharing: the integration
test `test_connection_reuse`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from secret_rotation.composition import build_service
from secret_rotation.eventgrid_outcomes import EventGridOutcomes
from secret_rotation.outcomes import Outcome, Status
from secret_rotation.settings import Settings

REPO = Path(__file__).resolve().parents[2]
VAULT = "https://vault-a.vault.azure.net"
SETTINGS = Settings.from_env(
    {
        "ROTATION_ALLOWED_VAULTS": VAULT,
        "AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "QueueEndpoint=http://127.0.0.1:1/devstoreaccount1;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1",
        "ROTATION_OUTCOME_TOPIC_ENDPOINT": "https://topic.example/api/events",
        "IDENTITY_ENDPOINT": "http://127.0.0.1:1/msi/token",
    }
)
WORKER_PARTS = {"lock", "registry"}


def built(service: object) -> set[str]:
    """The wiring's parts built so far (each is a cached property)."""
    wiring = service.wiring  # type: ignore[attr-defined]
    return {
        name
        for name in ("credential", "retry", "throttle", "stores", "queue", "lock", "reporter", "registry")
        if name in vars(wiring)
    }


async def test_building_the_service_builds_nothing_and_intake_builds_none_of_the_worker_parts() -> None:
    service = build_service(SETTINGS)
    assert built(service) == set()
    intake = service.intake
    assert intake is service.intake  # built once per process
    assert built(service) == {"credential", "retry", "stores", "queue", "reporter"}
    sink = service.wiring.reporter._sink  # type: ignore[union-attr]
    assert isinstance(sink, EventGridOutcomes) and sink._client is None
    service.worker  # noqa: B018
    assert built(service) >= WORKER_PARTS
    await service.close()


async def test_the_event_grid_publisher_is_built_on_the_first_published_outcome() -> None:
    made: list[object] = []

    class Client:
        async def send(self, event: object) -> None:
            made.append(event)

        async def close(self) -> None: ...

    from secret_rotation.retries import RetryPolicy

    sink = EventGridOutcomes(Client, RetryPolicy())  # type: ignore[arg-type]
    await sink.publish(Outcome(Status.ENQUEUED, "c1"))
    assert sink._client is None
    await sink.publish(Outcome(Status.FAILED, "c2", step="apply", reason="r"))
    assert len(made) == 1
    await sink.close()


def test_importing_the_app_imports_no_sdk_and_no_engine() -> None:
    heavy = (
        "azure.identity",
        "azure.keyvault",
        "azure.storage",
        "azure.eventgrid",
        "aiohttp",
        "tenacity",
        "psycopg",
        "secret_rotation.engine",
        "secret_rotation.intake",
        "rotators",
    )
    code = "import sys, function_app; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = [m for m in out.stdout.splitlines() if m.startswith(heavy)]
    assert loaded == []
