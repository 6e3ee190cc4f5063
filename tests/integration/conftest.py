"""Fixtures for tests against the local stack (`scripts/stack.py up`): real Key Vault double over TLS,
managed-identity endpoint, Azurite and PostgreSQL, reached through the real SDK clients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from azure.identity.aio import ManagedIdentityCredential
from azure.keyvault.secrets.aio import SecretClient
from psycopg import sql

import function_app
from secret_rotation.composition import Service, build_service
from secret_rotation.settings import Settings
from tests.doubles.stack_env import load_stack_env
from tests.support.host import LocalFunctionsHost, app_host

PG_DATABASE = "postgres"


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    return load_stack_env()


@pytest.fixture(scope="session")
def stack_environ(stack_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The process environment of a Function App wired to the local stack (identity endpoint included)."""
    with pytest.MonkeyPatch.context() as patch:
        for key, value in stack_env.items():
            patch.setenv(key, value)
        yield stack_env


@pytest.fixture(scope="session")
async def real_service(stack_environ: dict[str, str]) -> AsyncIterator[Service]:
    service = build_service(Settings.from_env(stack_environ))
    yield service
    await service.close()


@pytest.fixture
def host(real_service: Service, monkeypatch: pytest.MonkeyPatch) -> LocalFunctionsHost:
    monkeypatch.setattr(function_app, "_service", real_service)
    return app_host()


@pytest.fixture(scope="session")
async def vault(stack_environ: dict[str, str]) -> AsyncIterator[SecretClient]:
    """The test's own view of the vault, through the same managed-identity path as the app."""
    credential = ManagedIdentityCredential(client_id=stack_environ["AZURE_CLIENT_ID"])
    client = SecretClient(
        stack_environ["KEYVAULT_URL"],
        credential,
        api_version=stack_environ["KEYVAULT_API_VERSION"],
        verify_challenge_resource=False,
        connection_verify=stack_environ["KEYVAULT_CA_BUNDLE"],
    )
    async with client, credential:
        yield client


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


@pytest.fixture(scope="session")
def postgres(stack_env: dict[str, str]) -> Postgres:
    return Postgres(stack_env["PG_ADMIN_DSN"], stack_env["PGHOST"], int(stack_env["PGPORT"]))


def near_expiry(days: int = 10) -> datetime:
    return datetime.now(UTC) + timedelta(days=days)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def leak_check(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Iterator[list[str]]:
    """Collects every secret value a test handles; fails the test if any shows up in logs or output."""
    caplog.set_level("DEBUG")
    values: list[str] = []
    yield values
    captured = capsys.readouterr()
    seen = caplog.text + captured.out + captured.err + "".join(str(r.__dict__) for r in caplog.records)
    leaked = [v for v in values if v and v in seen]
    assert not leaked, f"{len(leaked)} secret value(s) appeared in logs or output"


def outcomes(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.outcome for r in caplog.records if hasattr(r, "outcome")]  # type: ignore[attr-defined]


async def time_shift(env: dict[str, str], *, days: int) -> None:
    """Moves every timestamp in the Key Vault double `days` into the past (its management API)."""
    import ssl

    import aiohttp

    context = ssl.create_default_context(cafile=env["KEYVAULT_CA_BUNDLE"])
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{env['KEYVAULT_MANAGEMENT_URL']}/time-shift", params={"seconds": str(days * 86400)}, ssl=context
        ) as response:
            response.raise_for_status()
