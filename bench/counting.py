"""Counts at the transport: every HTTP request and every new connection on the process's shared aiohttp
session (`secret_rotation.transport.SharedHttp` takes these trace configs), and PostgreSQL logins from
the server's own `pg_stat_database.sessions`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psycopg


@dataclass(frozen=True)
class Request:
    method: str
    host: str
    path: str
    status: int

    @property
    def is_keyvault_create(self) -> bool:
        parts = self.path.strip("/").split("/")
        return self.method == "PUT" and len(parts) == 2 and parts[0] == "secrets"


@dataclass
class TransportCounter:
    requests: list[Request] = field(default_factory=list)
    connections: Counter[str] = field(default_factory=Counter)

    def trace_config(self) -> aiohttp.TraceConfig:
        config = aiohttp.TraceConfig()

        async def on_request_end(_: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any) -> None:
            url = urlsplit(str(params.url))
            self.requests.append(Request(params.method, url.netloc, url.path, params.response.status))

        async def on_connection_create_end(_: aiohttp.ClientSession, ctx: SimpleNamespace, params: Any) -> None:
            self.connections["all"] += 1

        config.on_request_end.append(on_request_end)
        config.on_connection_create_end.append(on_connection_create_end)
        return config

    def reset(self) -> None:
        self.requests.clear()
        self.connections.clear()

    def to(self, host: str) -> list[Request]:
        """Requests to one host, without Key Vault's 401 bearer challenges (one per new client)."""
        return [r for r in self.requests if r.host == host and r.status != 401]


async def pg_sessions(admin_dsn: str, database: str = "postgres") -> int:
    """Sessions established to `database` and ended so far (PostgreSQL 15 flushes a backend's counters
    when it exits): the difference of two calls counts the logins in between plus the first call's own."""
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        cursor = await conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (database,))
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
