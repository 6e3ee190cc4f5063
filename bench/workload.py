"""What the benchmarks rotate, and the bare-SDK twin of a rotation they compare it with.

`seed()` makes a PostgreSQL role (or, dual pattern, two roles and an admin) and its near-expiry secret in
the bench vault. `BareRotation` repeats exactly the Key Vault requests the engine made (as counted at the
transport, replayed as plain `SecretClient` calls on fresh names) and the same number of PostgreSQL logins
plus one `ALTER ROLE` with a client-side SCRAM verifier, with no engine around them: the floor a rotation
service cannot go below on this stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets.aio import SecretClient
from azure.storage.blob.aio import ContainerClient
from psycopg import sql

from bench.counting import Request
from secret_rotation.settings import Settings
from tests.support.events import key_vault_event

PG_DATABASE = "postgres"
PATTERNS = ("single", "dual")


@dataclass(frozen=True)
class StackEnv:
    values: Mapping[str, str]

    @property
    def ca(self) -> str:
        return self.values["KEYVAULT_CA_BUNDLE"]

    @property
    def admin_dsn(self) -> str:
        return self.values["PG_ADMIN_DSN"]

    @property
    def pg_address(self) -> str:
        return f"postgresql://{self.values['PGHOST']}:{self.values['PGPORT']}/{PG_DATABASE}"

    def settings(self, vault_url: str, queue_name: str, **extra: str) -> Settings:
        env = {**self.values, "ROTATION_ALLOWED_VAULTS": vault_url, "ROTATION_QUEUE_NAME": queue_name, **extra}
        env.pop("ROTATION_OUTCOME_TOPIC_ENDPOINT", None)  # outcome events are best effort and not measured
        return Settings.from_env(env)


@dataclass(frozen=True)
class Seeded:
    pattern: str
    name: str
    version: str
    roles: tuple[str, ...]  # the role(s) the rotation changes
    passwords: tuple[str, ...]  # their current passwords, in the same order
    admin_secret: str | None = None
    admin: tuple[str, str] | None = None

    def event(self, vault_url: str) -> str:
        return json.dumps(key_vault_event(vault_url, self.name, self.version))


def _password() -> str:
    return secrets.token_urlsafe(24)


async def _create_roles(admin_dsn: str, roles: list[tuple[str, str, bool]]) -> None:
    async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as conn:
        for role, password, createrole in roles:
            options = sql.SQL("LOGIN CREATEROLE" if createrole else "LOGIN")
            await conn.execute(
                sql.SQL("CREATE ROLE {} {} PASSWORD {}").format(sql.Identifier(role), options, sql.Literal(password))
            )


async def seed(env: StackEnv, vault: SecretClient, pattern: str, prefix: str = "bench") -> Seeded:
    suffix = uuid.uuid4().hex[:12]
    expires = datetime.now(UTC) + timedelta(days=10)
    tags = {"ProviderAddress": env.pg_address, "ValidityPeriodDays": "60"}
    if pattern == "single":
        role, password = f"{prefix}_{suffix}", _password()
        await _create_roles(env.admin_dsn, [(role, password, False)])
        name = f"{prefix}-{suffix}"
        stored = await vault.set_secret(
            name, password, tags={**tags, "RotatorType": "postgres-role", "CredentialId": role}, expires_on=expires
        )
        return Seeded(pattern, name, stored.properties.version or "", (role,), (password,))
    admin, blue, green = (f"{prefix}_{kind}_{suffix}" for kind in ("admin", "blue", "green"))
    passwords = {role: _password() for role in (admin, blue, green)}
    await _create_roles(env.admin_dsn, [(admin, passwords[admin], True), (blue, passwords[blue], False)])
    await _create_roles(env.admin_dsn, [(green, passwords[green], False)])
    admin_secret = f"{prefix}-admin-{suffix}"
    await vault.set_secret(admin_secret, passwords[admin], tags={"CredentialId": admin})
    name = f"{prefix}-dual-{suffix}"
    stored = await vault.set_secret(
        name,
        json.dumps({"username": blue, "password": passwords[blue]}),
        content_type="application/json",
        expires_on=expires,
        tags={
            **tags,
            "RotatorType": "postgres-dual-user",
            "CredentialId": blue,
            "AlternateCredentialId": green,
            "AdminSecretName": admin_secret,
        },
    )
    return Seeded(
        pattern,
        name,
        stored.properties.version or "",
        (green,),
        (passwords[green],),
        admin_secret=admin_secret,
        admin=(admin, passwords[admin]),
    )


async def seed_many(env: StackEnv, vault: SecretClient, pattern: str, count: int, prefix: str) -> list[Seeded]:
    semaphore = asyncio.Semaphore(16)

    async def one() -> Seeded:
        async with semaphore:
            return await seed(env, vault, pattern, prefix)

    return list(await asyncio.gather(*(one() for _ in range(count))))


@dataclass(frozen=True)
class Recipe:
    """What one rotation did: its Key Vault requests (in order, names as in the engine's run) and logins."""

    template: Seeded
    keyvault: tuple[Request, ...]
    pg_logins: int
    lock: tuple[Request, ...] = ()

    @property
    def creates(self) -> int:
        return sum(1 for r in self.keyvault if r.is_keyvault_create)


class BareRotation:
    """The same requests as `recipe`, as bare SDK and psycopg calls, for the secret `target`."""

    def __init__(
        self, env: StackEnv, vault: SecretClient, recipe: Recipe, locks: ContainerClient | None = None
    ) -> None:
        self._env = env
        self._vault = vault
        self._recipe = recipe
        self._locks = locks

    def _name(self, recorded: str, target: Seeded) -> str:
        template = self._recipe.template
        if template.admin_secret and recorded == template.admin_secret and target.admin_secret:
            return target.admin_secret
        return recorded.replace(template.name, target.name)

    async def run(self, target: Seeded) -> None:
        if self._locks is None:
            await self._keyvault(target)
            return
        blob = self._locks.get_blob_client(f"bare/{target.name}")
        if len(self._recipe.lock) > 2:  # the lock blob did not exist yet
            with contextlib.suppress(ResourceExistsError):
                await blob.upload_blob(b"", overwrite=False)
        lease = await blob.acquire_lease(lease_duration=60)
        try:
            await self._keyvault(target)
        finally:
            await lease.release()

    async def _keyvault(self, target: Seeded) -> None:
        versions: dict[str, str] = {target.name: target.version}
        previous: Request | None = None
        for request in self._recipe.keyvault:
            parts = request.path.strip("/").split("/")
            if parts[0] != "secrets" or len(parts) < 2:
                previous = request
                continue
            name = self._name(parts[1], target)
            with contextlib.suppress(ResourceNotFoundError):  # the engine's 404s (no pending record yet) too
                await self._one(request, parts, name, versions, previous)
            previous = request
        await self._postgres(target)

    async def _one(
        self, request: Request, parts: list[str], name: str, versions: dict[str, str], previous: Request | None
    ) -> None:
        if request.method == "GET" and parts[2:] == ["versions"]:
            if previous != request:  # the SDK pages by itself: one listing, however many pages
                async for _ in self._vault.list_properties_of_secret_versions(name):
                    pass
        elif request.method == "GET":
            await self._vault.get_secret(name, versions.get(name) if len(parts) > 2 else None)
        elif request.method == "PUT":
            stored = await self._vault.set_secret(name, _password(), tags={"Bench": "bare"})
            versions[name] = stored.properties.version or ""
        elif request.method == "PATCH" and name in versions:
            await self._vault.update_secret_properties(name, versions[name], tags={"Bench": "closed"})

    async def _postgres(self, target: Seeded) -> None:
        role, old = target.roles[0], target.passwords[0]
        login_as = target.admin or (role, old)
        new = _password()
        host, port = self._env.values["PGHOST"], self._env.values["PGPORT"]
        async with await psycopg.AsyncConnection.connect(
            host=host, port=port, dbname=PG_DATABASE, user=login_as[0], password=login_as[1], autocommit=True
        ) as conn:
            verifier = await asyncio.to_thread(
                conn.pgconn.encrypt_password, new.encode(), role.encode(), b"scram-sha-256"
            )
            await conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier.decode()))
            )
        for _ in range(max(0, self._recipe.pg_logins - 1)):
            async with await psycopg.AsyncConnection.connect(
                host=host, port=port, dbname=PG_DATABASE, user=role, password=new, autocommit=True
            ) as conn:
                await conn.execute("SELECT current_user")
