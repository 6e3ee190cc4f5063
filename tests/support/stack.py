"""Helpers for tests against the local stack: PostgreSQL roles and logins, the vault's clock, names."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

PG_DATABASE = "postgres"


@dataclass
class Postgres:
    admin_dsn: str
    host: str
    port: int
    passwords: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"postgresql://{self.host}:{self.port}/{PG_DATABASE}"

    def new_password(self) -> str:
        password = uuid.uuid4().hex + "Aa!"
        self.passwords.append(password)
        return password

    async def create_role(self, prefix: str, *, createrole: bool = False) -> tuple[str, str]:
        role = f"{prefix}_{uuid.uuid4().hex[:10]}"
        password = self.new_password()
        options = sql.SQL("LOGIN CREATEROLE" if createrole else "LOGIN")
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(sql.Identifier(role), options, sql.Literal(password))
            )
        return role, password

    async def logs_in(self, role: str, password: str) -> bool:
        try:
            conn = await psycopg.AsyncConnection.connect(
                host=self.host, port=self.port, dbname=PG_DATABASE, user=role, password=password, connect_timeout=5
            )
        except psycopg.OperationalError:
            return False
        async with conn:
            row = await (await conn.execute("SELECT current_user")).fetchone()
        return row is not None and row[0] == role


def near_expiry(days: int = 10) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def outcomes(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.outcome for r in caplog.records if hasattr(r, "outcome")]


async def time_shift(env: dict[str, str], *, days: int) -> None:
    """Moves every timestamp in the Key Vault double `days` into the past (its management API)."""
    import ssl

    import aiohttp

    context = ssl.create_default_context(cafile=env["KEYVAULT_CA_BUNDLE"])
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{env['KEYVAULT_MANAGEMENT_URL']}/time-shift", params={"seconds": str(days * 86400)}, ssl=context
        ) as response,
    ):
        response.raise_for_status()
