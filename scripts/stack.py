"""Bring the local test stack up or down on 127.0.0.1: Azurite, PostgreSQL and the Key Vault/identity doubles.

Usage (with the project venv's python, from anywhere):
    python scripts/stack.py up        start what is not running, wait until everything is ready, write the env file
    python scripts/stack.py env       (re)write .local/stack.env only
    python scripts/stack.py status    one line per component
    python scripts/stack.py down [--purge]   stop what `up` started; --purge also deletes .local/

State lives in .local/ (gitignored): pids in run/, logs in logs/, data in azurite/ and postgres/, TLS material
in tls/, per-stack generated secrets in stack.json. Ports default as below and can be overridden with
STACK_BLOB_PORT, STACK_QUEUE_PORT, STACK_TABLE_PORT, STACK_PG_PORT, STACK_KEYVAULT_PORT, STACK_IDENTITY_PORT;
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
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / ".local"
RUN = LOCAL / "run"
LOGS = LOCAL / "logs"
TLS_DIR = LOCAL / "tls"
PG_ROOT = LOCAL / "postgres"
PG_DATA = PG_ROOT / "data"
PG_SOCKET_DIR = PG_ROOT / "run"
AZURITE_DIR = LOCAL / "azurite"
STATE_FILE = LOCAL / "stack.json"
TOKEN_KEY_FILE = LOCAL / "token.key"
HEADER_FILE = LOCAL / "identity-header"
ENV_FILE = LOCAL / "stack.env"
AZURITE_BIN = REPO / ".cache" / "node" / "node_modules" / ".bin" / "azurite"
HOST = "127.0.0.1"
ACCOUNT = "devstoreaccount1"
IS_ROOT = os.geteuid() == 0

# The doubles and tls helpers live in the test tree; make them importable when run as a plain script.
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


class StackError(RuntimeError):
    """A component failed; the message names it and its log file."""


def _port(var: str, default: int) -> int:
    raw = os.environ.get(var)
    return int(raw) if raw else default


@dataclass(frozen=True)
class Ports:
    blob: int = _port("STACK_BLOB_PORT", 10000)
    queue: int = _port("STACK_QUEUE_PORT", 10001)
    table: int = _port("STACK_TABLE_PORT", 10002)
    pg: int = _port("STACK_PG_PORT", 55432)
    keyvault: int = _port("STACK_KEYVAULT_PORT", 8443)
    identity: int = _port("STACK_IDENTITY_PORT", 8081)


PORTS = Ports()
TIMEOUT = float(os.environ.get("STACK_READY_TIMEOUT", "60"))


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.with_suffix(".tmp").replace(path)


def load_state() -> dict[str, str]:
    """Per-stack random values, generated once and kept until `down --purge`."""
    if STATE_FILE.is_file():
        state: dict[str, str] = json.loads(STATE_FILE.read_text())
        return state
    state = {
        # Azurite's well-known dev key is public; a random one keeps the stack from accepting it.
        "azurite_key": base64.b64encode(secrets.token_bytes(64)).decode(),
        "identity_header": secrets.token_urlsafe(32),
        "client_id": str(uuid.uuid4()),
        "tenant_id": str(uuid.uuid4()),
    }
    _write_private(STATE_FILE, json.dumps(state, indent=2) + "\n")
    return state


def env_values(state: dict[str, str]) -> dict[str, str]:
    """Exactly the variables of .local/stack.env."""
    kv = f"https://{HOST}:{PORTS.keyvault}"
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
        "ROTATION_ALLOWED_VAULTS": kv,
        "ROTATION_ALLOWED_SCOPES": f"postgresql://{HOST}:{PORTS.pg}",
        "PGHOST": HOST,
        "PGPORT": str(PORTS.pg),
        "PG_ADMIN_DSN": f"host={PG_SOCKET_DIR} port={PORTS.pg} user=postgres dbname=postgres",
    }


def write_env(state: dict[str, str]) -> None:
    from tests.doubles.stack_env import write_stack_env

    write_stack_env(ENV_FILE, env_values(state))


# --- processes -----------------------------------------------------------------------------------------


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _is_ours(pid: int | None) -> bool:
    """Alive and started for this stack: a recycled pid would not mention our .local path."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state != "Z" and str(LOCAL).encode() in cmdline


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


def _fail(component: str, log: Path, what: str) -> StackError:
    return StackError(f"{component}: {what}; see {log}\n--- last lines of {log} ---\n{_tail(log)}")


def _record(component: str, pid: int | None, ports: tuple[int, ...]) -> None:
    # The ports are kept so a later `up` with other STACK_*_PORT values can refuse instead of hanging.
    (RUN / f"{component}.pid").write_text(f"{pid} {','.join(map(str, ports))}\n")


def _recorded_ports(path: Path) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in path.read_text().split()[1].split(","))
    except (OSError, ValueError, IndexError):
        return None


def _spawn(
    component: str, ports: tuple[int, ...], cmd: list[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    log = LOGS / f"{component}.log"
    with log.open("ab") as out:
        # A new session detaches the process from our terminal so it outlives this script.
        proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    _record(component, proc.pid, ports)
    return proc


def _wait(component: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes] | None = None) -> None:
    log = LOGS / f"{component}.log"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            raise _fail(component, log, f"exited with code {proc.returncode} before becoming ready")
        time.sleep(0.1)
    raise _fail(component, log, f"not ready within {TIMEOUT:.0f}s")


def _https_ok(url: str) -> bool:
    context = ssl.create_default_context(cafile=str(TLS_DIR / "ca.pem"))
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310 - fixed URL
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - fixed loopback URL
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


@dataclass
class Component:
    name: str
    ports: tuple[int, ...]
    start: Callable[[dict[str, str]], subprocess.Popen[bytes] | None]
    ready: Callable[[], bool]
    stop_signal: signal.Signals = signal.SIGTERM

    @property
    def pid_file(self) -> Path:
        return RUN / f"{self.name}.pid"

    def pid(self) -> int | None:
        return _read_pid(self.pid_file)


def _python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def start_azurite(state: dict[str, str]) -> subprocess.Popen[bytes]:
    if not AZURITE_BIN.exists():
        raise StackError(f"azurite: {AZURITE_BIN} is missing; run `bash scripts/setup.sh` first")
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [str(AZURITE_BIN), "--location", str(AZURITE_DIR), "--disableTelemetry", "--skipApiVersionCheck"]
    for service, port in (("blob", PORTS.blob), ("queue", PORTS.queue), ("table", PORTS.table)):
        cmd += [f"--{service}Host", HOST, f"--{service}Port", str(port)]
    env = dict(os.environ, AZURITE_ACCOUNTS=f"{ACCOUNT}:{state['azurite_key']}")
    return _spawn("azurite", (PORTS.blob, PORTS.queue, PORTS.table), cmd, env)


def start_keyvault(state: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [_python(), "-m", "tests.doubles.keyvault", "--host", HOST, "--port", str(PORTS.keyvault)]
    cmd += ["--cert", str(TLS_DIR / "server.pem"), "--key", str(TLS_DIR / "server-key.pem")]
    cmd += ["--key-file", str(TOKEN_KEY_FILE), "--tenant-id", state["tenant_id"]]
    return _spawn("keyvault", (PORTS.keyvault,), cmd)


def start_identity(state: dict[str, str]) -> subprocess.Popen[bytes]:
    _write_private(HEADER_FILE, state["identity_header"])
    cmd = [_python(), "-m", "tests.doubles.identity", "--host", HOST, "--port", str(PORTS.identity)]
    cmd += ["--key-file", str(TOKEN_KEY_FILE), "--header-file", str(HEADER_FILE)]
    cmd += ["--client-id", state["client_id"], "--tenant-id", state["tenant_id"]]
    return _spawn("identity", (PORTS.identity,), cmd)


# --- PostgreSQL ----------------------------------------------------------------------------------------


def _pg_bin(tool: str) -> str:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{tool}"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if candidates:
        return str(candidates[-1])
    found = shutil.which(tool)
    if found:
        return found
    raise StackError(f"postgres: {tool} not found; run `bash scripts/setup.sh` (installs PostgreSQL)")


def _as_pg(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root, so root hands the server to the distro's postgres account.
    return ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd


def _pg_conf() -> str:
    return "\n".join(
        [
            "# Written by scripts/stack.py on every `up`.",
            f"listen_addresses = '{HOST}'",
            f"port = {PORTS.pg}",
            f"unix_socket_directories = '{PG_SOCKET_DIR}'",
            "password_encryption = 'scram-sha-256'",
            # Throwaway test data: durability only costs start-up and test time here.
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "",
        ]
    )


PG_HBA = "\n".join(
    [
        "# Written by scripts/stack.py: admin only over the private socket, everyone else with SCRAM over TCP.",
        "local all postgres trust",
        f"host all all {HOST}/32 scram-sha-256",
        "",
    ]
)


def start_postgres(_: dict[str, str]) -> None:
    log = LOGS / "postgres.log"
    for directory in (PG_DATA, PG_SOCKET_DIR):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log.touch()
    if IS_ROOT:
        subprocess.run(["chown", "-R", "postgres:postgres", str(PG_ROOT), str(log)], check=True)
        probe = subprocess.run(_as_pg(["test", "-w", str(PG_DATA)]), check=False)
        if probe.returncode != 0:
            raise StackError(
                f"postgres: the postgres OS user cannot reach {PG_DATA}; make every parent directory "
                "of the repository world-executable (chmod o+x) or run the stack as a non-root user"
            )
    PG_SOCKET_DIR.chmod(0o755)  # clients of any OS user reach the socket; auth is pg_hba's job
    if not (PG_DATA / "PG_VERSION").exists():
        cmd = [_pg_bin("initdb"), "-D", str(PG_DATA), "-U", "postgres", "-E", "UTF8", "--locale=C"]
        cmd += ["--auth-local=trust", "--auth-host=scram-sha-256"]
        with log.open("ab") as out:
            done = subprocess.run(_as_pg(cmd), stdout=out, stderr=subprocess.STDOUT, check=False)
        if done.returncode != 0:
            raise _fail("postgres", log, "initdb failed")
        with (PG_DATA / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude 'stack.conf'\n")
    for name, text in (("stack.conf", _pg_conf()), ("pg_hba.conf", PG_HBA)):
        (PG_DATA / name).write_text(text)
        if IS_ROOT:
            shutil.chown(PG_DATA / name, "postgres", "postgres")
    cmd = [_pg_bin("pg_ctl"), "-D", str(PG_DATA), "-l", str(log), "-w", "-t", str(int(TIMEOUT)), "-s", "start"]
    with log.open("ab") as out:
        # pg_ctl forks the postmaster; the new session keeps it alive after we exit.
        done = subprocess.run(
            _as_pg(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            check=False,
        )
    if done.returncode != 0:
        raise _fail("postgres", log, "pg_ctl start failed")
    pid = _read_pid(PG_DATA / "postmaster.pid")
    _record("postgres", pid, (PORTS.pg,))


def postgres_ready() -> bool:
    isready = _pg_bin("pg_isready")
    for host in (HOST, str(PG_SOCKET_DIR)):
        cmd = [isready, "-q", "-h", host, "-p", str(PORTS.pg), "-U", "postgres", "-t", "1"]
        if subprocess.run(cmd, check=False).returncode != 0:
            return False
    return True


COMPONENTS = [
    Component(
        "azurite",
        (PORTS.blob, PORTS.queue, PORTS.table),
        start_azurite,
        lambda: all(_port_open(p) for p in (PORTS.blob, PORTS.queue, PORTS.table)),
    ),
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") would wait for clients to disconnect.
    Component("postgres", (PORTS.pg,), start_postgres, postgres_ready, signal.SIGINT),
    Component(
        "keyvault", (PORTS.keyvault,), start_keyvault, lambda: _https_ok(f"https://{HOST}:{PORTS.keyvault}/ping")
    ),
    Component("identity", (PORTS.identity,), start_identity, lambda: _http_ok(f"http://{HOST}:{PORTS.identity}/ping")),
]


def _running_pid(component: Component) -> int | None:
    pid = component.pid()
    if component.name == "postgres" and not _is_ours(pid):
        pid = _read_pid(PG_DATA / "postmaster.pid")  # a server left by an interrupted `up`
    return pid if _is_ours(pid) else None


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
        if _running_pid(component) is not None:
            recorded = _recorded_ports(component.pid_file)
            if recorded is not None and recorded != component.ports:
                raise StackError(
                    f"{component.name}: already running on port(s) {list(recorded)}, not {list(component.ports)}; "
                    "run `scripts/stack.py down` before changing STACK_*_PORT"
                )
            continue
        busy = [p for p in component.ports if _port_open(p)]
        if busy:
            raise StackError(
                f"{component.name}: port(s) {busy} on {HOST} are in use by another process; stop it or "
                f"choose other ports (see `python scripts/stack.py --help`)"
            )
        started[component.name] = component.start(state)
    for component in COMPONENTS:
        _wait(component.name, component.ready, started.get(component.name))
    write_env(state)
    fresh = ", ".join(started) or "nothing (already running)"
    print(f"stack up: started {fresh}; env file {ENV_FILE}")


def _stop(component: Component) -> str:
    pid = _running_pid(component)
    component.pid_file.unlink(missing_ok=True)
    if pid is None:
        return "not running"
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, component.stop_signal)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _is_ours(pid):
        time.sleep(0.1)
    if _is_ours(pid):
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
        pid = _running_pid(component)
        ports = ", ".join(str(p) for p in component.ports)
        if pid is None:
            line, code = "stopped", 1
        elif component.ready():
            line = f"running, ready (pid {pid})"
        else:
            line, code = f"running, NOT ready (pid {pid})", 1
        print(f"{component.name:<9} {line:<30} {HOST}:{ports}  log {LOGS / (component.name + '.log')}")
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
