"""Cold start, in fresh processes: importing `function_app` against importing `azure.functions`, and
import + first intake (Key Vault read, enqueue) against the same two requests made with bare SDK calls.

Each child measures from its first line, after the interpreter started, so both sides pay the same
interpreter start-up outside the figure. Sides alternate; the ratio is the median of the pairs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from bench.context import Bench
from bench.report import REPO, Row, fmt_ratio, ratio
from bench.workload import seed
from tests.support.events import key_vault_event

IMPORT_APP = "import function_app"
IMPORT_FUNCTIONS = "import azure.functions"

FIRST_INTAKE = """
import function_app, azure.functions as func, asyncio, datetime
e = json.loads(os.environ["BENCH_EVENT"])
event = func.EventGridEvent(id=e["id"], data=e["data"], topic=e["topic"], subject=e["subject"],
    event_type=e["eventType"], event_time=datetime.datetime.fromisoformat(e["eventTime"]),
    data_version=e["dataVersion"])
async def main():
    await function_app.on_secret_near_expiry(event)
    elapsed = time.perf_counter() - start
    await function_app.service().close()
    return elapsed
"""

BARE_INTAKE = """
import azure.functions, asyncio
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.queue import TextBase64EncodePolicy
from azure.storage.queue.aio import QueueClient
e = json.loads(os.environ["BENCH_EVENT"])
async def main():
    credential = ManagedIdentityCredential(client_id=os.environ["AZURE_CLIENT_ID"])
    vault = SecretClient(os.environ["ROTATION_ALLOWED_VAULTS"], credential, api_version="7.6",
        verify_challenge_resource=False, connection_verify=os.environ["KEYVAULT_CA_BUNDLE"])
    queue = QueueClient.from_connection_string(os.environ["AzureWebJobsStorage"], os.environ["ROTATION_QUEUE_NAME"],
        message_encode_policy=TextBase64EncodePolicy())
    secret = await vault.get_secret(e["subject"])
    stale = secret.properties.version != e["data"].get("Version")
    await queue.send_message(json.dumps(e))
    elapsed = time.perf_counter() - start
    await vault.close(); await queue.close(); await credential.close()
    return elapsed
"""


def _child(body: str, env: dict[str, str], run_main: bool) -> float:
    prologue = "import time\nstart = time.perf_counter()\nimport json, os\n"
    epilogue = "print(asyncio.run(main()))" if run_main else "print(time.perf_counter() - start)"
    out = subprocess.run(
        [sys.executable, "-c", prologue + body + "\n" + epilogue],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold-start child failed: {out.stderr[-2000:]}")
    return float(out.stdout.strip().splitlines()[-1])


def _pairs(a: str, b: str, env: dict[str, str], repeats: int, run_main: bool) -> tuple[list[float], list[float]]:
    first: list[float] = []
    second: list[float] = []
    for i in range(repeats):
        for side in ("a", "b") if i % 2 == 0 else ("b", "a"):
            if side == "a":
                first.append(_child(a, env, run_main))
            else:
                second.append(_child(b, env, run_main))
    return first, second


def _ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.0f} ms"


async def run(bench: Bench, repeats: int) -> list[Row]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    _child(IMPORT_APP, env, run_main=False)  # compile once, so neither side pays for .pyc files
    # The difference is a few ms of our modules on top of azure.functions' ~0.5 s: many cheap pairs, so the
    # median is not what a neighbour's burst of CPU happened to hit.
    app, functions = _pairs(IMPORT_APP, IMPORT_FUNCTIONS, env, repeats * 6, run_main=False)
    import_ratio = ratio(app, functions)

    queue = bench.queue_name()
    target = await seed(bench.env, bench.seeder, "single", prefix="cold")
    event = key_vault_event(bench.vaults.direct, target.name, target.version)
    env |= {
        "ROTATION_ALLOWED_VAULTS": bench.vaults.direct,
        "ROTATION_QUEUE_NAME": queue,
        "BENCH_EVENT": json.dumps(event),
    }
    env.pop("ROTATION_OUTCOME_TOPIC_ENDPOINT", None)
    _child(FIRST_INTAKE, env, run_main=True)  # creates the queue, so both sides find it there
    ours, bare = _pairs(FIRST_INTAKE, BARE_INTAKE, env, repeats * 2, run_main=True)
    intake_ratio = ratio(ours, bare)
    return [
        Row(
            "cold start",
            "import function_app vs import azure.functions",
            fmt_ratio(import_ratio),
            "<= 1.15",
            import_ratio[0] <= 1.15,
            note=f"median {_ms(app)} vs {_ms(functions)}",
        ),
        Row(
            "cold start",
            "import + first intake vs bare SDK calls",
            fmt_ratio(intake_ratio),
            "<= 1.2",
            intake_ratio[0] <= 1.2,
            note=f"median {_ms(ours)} vs {_ms(bare)}; "
            "bare: azure.functions + ManagedIdentityCredential + SecretClient.get_secret + QueueClient.send_message",
        ),
    ]
