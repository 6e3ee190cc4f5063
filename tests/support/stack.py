"""Helpers for tests against the local stack: PostgreSQL roles and logins, the vault's clock, names."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

if TYPE_CHECKING:
    from azure.keyvault.secrets.aio import SecretClient

    from tests.support.host import LocalFunctionsHost

PG_DATABASE = "postgres"


@dataclass
class Postgres:
    admin_dsn: str
    host: str
    port: int

    @property
    def address(self) -> str:
        return f"postgresql://{self.host}:{self.port}/{PG_DATABASE}"

    def new_password(self) -> str:
        from tests.support.hygiene import HYGIENE

        password = uuid.uuid4().hex + "Aa!"
        HYGIENE.track(password)
        return password

    async def create_role(
        self, prefix: str, *, createrole: bool = False, with_password: bool = True
    ) -> tuple[str, str]:
        """A new login role; without a password it cannot log in until a rotation gives it one."""
        role = f"{prefix}_{uuid.uuid4().hex[:10]}"
        password = self.new_password() if with_password else ""
        options = sql.SQL("LOGIN CREATEROLE" if createrole else "LOGIN")
        secret = sql.SQL("PASSWORD {}").format(sql.Literal(password)) if with_password else sql.SQL("")
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            await conn.execute(sql.SQL("CREATE ROLE {} {} {}").format(sql.Identifier(role), options, secret))
        return role, password

    async def admin(self, template: str, *identifiers: str) -> None:
        """Runs `template` as the superuser, each `{}` filled with an identifier (quoted by psycopg)."""
        statement = sql.SQL(template).format(*map(sql.Identifier, identifiers))
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            await conn.execute(statement)

    async def major(self) -> int:
        async with await psycopg.AsyncConnection.connect(self.admin_dsn) as conn:
            return conn.info.server_version // 10000

    async def grant_rotation_admin(self, admin: str, *roles: str) -> None:
        """The grants docs/tags.md asks for besides CREATEROLE: none before PostgreSQL 16; from 16 on, ADMIN
        OPTION on each managed role, without inheriting its privileges or being able to SET ROLE to it."""
        if await self.major() < 16:
            return
        grant = sql.SQL("GRANT {} TO {} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE").format(
            sql.SQL(", ").join(map(sql.Identifier, roles)), sql.Identifier(admin)
        )
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            await conn.execute(grant)

    async def ensure_database(self, name: str) -> None:
        """A database called `name` (kept between runs: creating one costs more than checking)."""
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            cursor = await conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if await cursor.fetchone() is None:
                await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    async def password_scheme(self, role: str) -> str | None:
        """How the server stores `role`'s password: "SCRAM-SHA-256", "md5", or None without one."""
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            cursor = await conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", (role,))
            row = await cursor.fetchone()
        stored = row[0] if row else None
        if stored is None:
            return None
        return "md5" if stored.startswith("md5") else str(stored).split("$", 1)[0]

    async def has_password(self, role: str) -> bool:
        """Whether the provider would accept some password for `role` at all."""
        async with await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True) as conn:
            cursor = await conn.execute("SELECT rolpassword IS NOT NULL FROM pg_authid WHERE rolname = %s", (role,))
            row = await cursor.fetchone()
        return bool(row and row[0])

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


async def time_shift(env: dict[str, str], *, days: int = 0, seconds: int = 0, vault: str | None = None) -> None:
    """Moves timestamps in the Key Vault double into the past (its management API): those of one vault,
    or of every vault when `vault` is None."""
    import ssl

    import aiohttp

    context = ssl.create_default_context(cafile=env["KEYVAULT_CA_BUNDLE"])
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{env['KEYVAULT_MANAGEMENT_URL']}/time-shift",
            params={"seconds": str(days * 86400 + seconds), **({"vault": vault} if vault else {})},
            ssl=context,
        ) as response,
    ):
        response.raise_for_status()


async def break_lock(env: dict[str, str], vault_url: str, secret_name: str) -> None:
    """Ends a dead worker's lease at once instead of waiting out its 60 seconds."""
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob.aio import BlobClient, BlobLeaseClient

    from secret_rotation.blob_lock import lock_blob_name
    from secret_rotation.settings import DEFAULT_LOCK_CONTAINER

    blob = BlobClient.from_connection_string(
        env["AzureWebJobsStorage"], DEFAULT_LOCK_CONTAINER, lock_blob_name(vault_url, secret_name)
    )
    async with blob:
        try:
            await BlobLeaseClient(blob).break_lease(lease_break_period=0)
        except HttpResponseError as exc:
            if exc.status_code not in (404, 409):  # no blob, or no lease to break
                raise


async def readable_values(vault: Any, name: str) -> list[tuple[str, str, dict[str, str]]]:
    """(version, value, tags) of every enabled version of a secret, newest last; [] if it does not exist."""
    from azure.core.exceptions import ResourceNotFoundError

    found = []
    try:
        versions = [p async for p in vault.list_properties_of_secret_versions(name)]
    except ResourceNotFoundError:
        return []
    for props in sorted(versions, key=lambda p: p.created_on):
        if props.enabled:
            secret = await vault.get_secret(name, props.version)
            found.append((props.version, secret.value or "", dict(props.tags or {})))
    return found


@contextlib.asynccontextmanager
async def open_vault(env: dict[str, str], vault_url: str | None = None) -> AsyncIterator[SecretClient]:
    """A vault of the local stack through the real SDK and the same managed-identity path as the app."""
    from azure.identity.aio import ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient

    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])
    client = SecretClient(
        vault_url or env["KEYVAULT_URL"],
        credential,
        api_version=env["KEYVAULT_API_VERSION"],
        verify_challenge_resource=False,
        connection_verify=env["KEYVAULT_CA_BUNDLE"],
    )
    async with client, credential:
        yield client


@dataclass(frozen=True)
class SeededSecret:
    name: str
    role: str
    version: str


async def seed_role_secret(
    vault: SecretClient,
    postgres: Postgres,
    leak: list[str],
    prefix: str,
    *,
    address: str | None = None,
    **tags: str,
) -> SeededSecret:
    """A new PostgreSQL role and a `postgres-role` secret for it, near expiry; `tags` override the defaults."""
    role, password = await postgres.create_role(prefix.replace("-", "_"))
    leak.append(password)
    name = unique(prefix)
    secret = await vault.set_secret(
        name,
        password,
        tags={
            "RotatorType": "postgres-role",
            "CredentialId": role,
            "ProviderAddress": address or postgres.address,
            "ValidityPeriodDays": "60",
            **tags,
        },
        expires_on=near_expiry(),
    )
    assert secret.properties.version
    return SeededSecret(name, role, secret.properties.version)


@dataclass(frozen=True)
class SeededDual:
    name: str
    admin: str
    blue: str
    green: str
    blue_password: str
    version: str
    green_password: str = ""  # only with seed_dual_secret(..., green_password=True)

    @property
    def roles(self) -> tuple[str, str]:
        """(active, inactive)"""
        return self.blue, self.green

    @property
    def password(self) -> str:
        """The active role's."""
        return self.blue_password


async def seed_dual_secret(
    vault: SecretClient,
    postgres: Postgres,
    leak: list[str],
    prefix: str,
    *,
    content_type: str | None = None,
    green_password: bool = False,
    expires_on: datetime | None = None,
    **tags: str,
) -> SeededDual:
    """An admin role with the grants docs/tags.md asks for on this server's version, `blue` (current, with a
    password) and `green` (no password yet, unless `green_password`), the admin secret, and a
    `postgres-dual-user` secret near expiry (or expiring at `expires_on`); `tags` override the defaults."""
    role_prefix = prefix.replace("-", "_")
    admin, admin_password = await postgres.create_role(f"{role_prefix}_admin", createrole=True)
    blue, blue_password = await postgres.create_role(f"{role_prefix}_blue")
    green, green_pass = await postgres.create_role(f"{role_prefix}_green", with_password=green_password)
    await postgres.grant_rotation_admin(admin, blue, green)
    leak.extend(p for p in (admin_password, blue_password, green_pass) if p)
    name = unique(prefix)
    await vault.set_secret(f"{name}-admin", admin_password, tags={"CredentialId": admin})
    secret = await vault.set_secret(
        name,
        json.dumps({"username": blue, "password": blue_password}),
        content_type=content_type,
        tags={
            "RotatorType": "postgres-dual-user",
            "CredentialId": blue,
            "AlternateCredentialId": green,
            "AdminSecretName": f"{name}-admin",
            "ProviderAddress": postgres.address,
            "ValidityPeriodDays": "60",
            **tags,
        },
        expires_on=expires_on or near_expiry(),
    )
    assert secret.properties.version
    return SeededDual(name, admin, blue, green, blue_password, secret.properties.version, green_pass)


async def deliver_job(
    host: LocalFunctionsHost,
    env: dict[str, str],
    seeded: SeededSecret | SeededDual,
    caplog: pytest.LogCaptureFixture,
) -> list[dict[str, Any]]:
    """Delivers the seeded secret's Key Vault event to the queue function; the outcomes it logged."""
    from tests.support.events import key_vault_event

    caplog.clear()
    await host.deliver_queue_message(json.dumps(key_vault_event(env["KEYVAULT_URL"], seeded.name, seeded.version)))
    return outcomes(caplog)
