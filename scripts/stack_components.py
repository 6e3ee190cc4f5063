"""What each part of the local stack runs, and how `scripts/stack.py` knows it is ready.

`up` starts the components in the order of COMPONENTS (all at once, then waits for each) and `down` stops
them in reverse. Every part listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from stack_processes import (
    ACCOUNT,
    AZURITE_BIN,
    AZURITE_DIR,
    HEADER_FILE,
    HOST,
    IS_ROOT,
    LOGS,
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
            raise fail("postgres", log, "initdb failed")
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
        raise fail("postgres", log, "pg_ctl start failed")
    pid = read_pid(PG_DATA / "postmaster.pid")
    record("postgres", pid, (PORTS.pg,))


def postgres_ready() -> bool:
    isready = _pg_bin("pg_isready")
    for host in (HOST, str(PG_SOCKET_DIR)):
        cmd = [isready, "-q", "-h", host, "-p", str(PORTS.pg), "-U", "postgres", "-t", "1"]
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


COMPONENTS = [
    Component(
        "azurite",
        (PORTS.blob, PORTS.queue, PORTS.table),
        start_azurite,
        lambda: all(port_open(p) for p in (PORTS.blob, PORTS.queue, PORTS.table)),
    ),
    # SIGINT is PostgreSQL's "fast" shutdown; SIGTERM ("smart") would wait for clients to disconnect.
    Component("postgres", (PORTS.pg,), start_postgres, postgres_ready, signal.SIGINT),
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
