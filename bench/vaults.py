"""The benchmark's own Key Vault double and fault proxy, next to the running local stack.

Why its own: the sweep benchmark fills a vault with 10,000 secrets and the burst one with hundreds,
which must neither slow down nor be seen by the test suite's vaults. Same code, TLS material, token key
and tenant as the stack's double (`scripts/stack_components.py`), so the stack's identity endpoint
issues tokens it accepts. Ports: `STACK_BENCH_KEYVAULT_PORT`, `STACK_BENCH_KEYVAULT_FAULTS_PORT`.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCAL = REPO / ".local"
TLS = LOCAL / "tls"
HOST = "127.0.0.1"


def _port(var: str, default: int) -> int:
    return int(os.environ.get(var) or default)


@dataclass(frozen=True)
class BenchVaults:
    direct: str  # the bench's Key Vault double
    proxied: str  # the same vault through the bench's fault proxy (throttle mode)
    faults_control: str


def _ready(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(url, context=context, timeout=2):  # noqa: S310 (loopback)
            return True
    except OSError:
        return False


@contextlib.contextmanager
def bench_vaults() -> Iterator[BenchVaults]:
    """Starts both processes, yields their URLs, and stops exactly these two processes afterwards."""
    state = json.loads((LOCAL / "stack.json").read_text())
    kv_port = _port("STACK_BENCH_KEYVAULT_PORT", 8453)
    faults_port = _port("STACK_BENCH_KEYVAULT_FAULTS_PORT", 8454)
    tls = ["--cert", str(TLS / "server.pem"), "--key", str(TLS / "server-key.pem")]
    keyvault = [sys.executable, "-m", "tests.doubles.keyvault", "--host", HOST, "--port", str(kv_port), *tls]
    keyvault += ["--key-file", str(LOCAL / "token.key"), "--tenant-id", state["tenant_id"]]
    faults = [sys.executable, "-m", "tests.doubles.faults", "--host", HOST, "--listen-port", str(faults_port)]
    faults += ["--upstream", f"https://{HOST}:{kv_port}", "--upstream-ca", str(TLS / "ca.pem"), "--name", "bench"]
    faults += ["--tls-cert", str(TLS / "server.pem"), "--tls-key", str(TLS / "server-key.pem")]
    log = (LOCAL / "logs" / "bench-vaults.log").open("ab")
    procs = [
        subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for cmd in (keyvault, faults)
    ]
    context = ssl.create_default_context(cafile=str(TLS / "ca.pem"))
    vaults = BenchVaults(
        direct=f"https://{HOST}:{kv_port}",
        proxied=f"https://{HOST}:{faults_port}",
        faults_control=f"https://{HOST}:{faults_port}/__faults",
    )
    try:
        deadline = time.monotonic() + 30
        while not (_ready(f"{vaults.direct}/ping", context) and _ready(f"{vaults.faults_control}/stats", context)):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise RuntimeError("bench Key Vault double did not start; see .local/logs/bench-vaults.log")
            time.sleep(0.1)
        yield vaults
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()
