"""PostgreSQL access shared by the PostgreSQL rotators: address parsing, login test, password change.

`ProviderAddress` is `postgresql://host[:port]/database[?sslmode=...]` with no user or password in it
(credentials live in Key Vault, never in tags). A password is changed with `ALTER ROLE ... PASSWORD`
carrying a SCRAM-SHA-256 verifier computed on the client by libpq, so the clear-text password never
reaches the server's statement log; the role name is quoted as an identifier by psycopg.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from secret_rotation.errors import ConfigurationError, ProviderRefusedError, TransientError
from secret_rotation.rotator import Credential

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

_ALLOWED_SSLMODES = frozenset({"disable", "prefer", "require", "verify-ca", "verify-full"})
# SQLSTATE class 28: invalid authorization (wrong password, no such role, login not allowed).
_AUTH_FAILURE_PREFIX = "28"
_CONNECT_TIMEOUT_SECONDS = 10


@dataclass(frozen=True)
class PostgresAddress:
    host: str
    port: int
    database: str
    sslmode: str

    @property
    def scope(self) -> str:
        return f"postgresql://{self.host}:{self.port}/{self.database}"

    @classmethod
    def parse(cls, address: str) -> PostgresAddress:
        parts = urlsplit(address)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigurationError(f"ProviderAddress {address!r} must start with postgresql://")
        if parts.username or parts.password:
            raise ConfigurationError("ProviderAddress must not carry a user or password")
        database = parts.path.lstrip("/")
        if not parts.hostname or not database or "/" in database:
            raise ConfigurationError(f"ProviderAddress {address!r} must be postgresql://host[:port]/database")
        try:
            port = parts.port or 5432
        except ValueError:
            raise ConfigurationError(f"ProviderAddress {address!r} has an invalid port") from None
        query = parse_qs(parts.query)
        unknown = set(query) - {"sslmode"}
        if unknown:
            raise ConfigurationError(f"ProviderAddress has unsupported options: {', '.join(sorted(unknown))}")
        sslmode = query.get("sslmode", ["prefer"])[-1]
        if sslmode not in _ALLOWED_SSLMODES:
            raise ConfigurationError(f"ProviderAddress sslmode {sslmode!r} is not one of {sorted(_ALLOWED_SSLMODES)}")
        return cls(host=parts.hostname, port=port, database=database, sslmode=sslmode)


async def connect(address: PostgresAddress, credential: Credential) -> psycopg.AsyncConnection[TupleRow]:
    """A connection logged in as `credential`; raises ProviderRefusedError or TransientError."""
    import psycopg

    try:
        return await psycopg.AsyncConnection.connect(
            host=address.host,
            port=address.port,
            dbname=address.database,
            sslmode=address.sslmode,
            user=credential.credential_id,
            password=credential.secret.reveal(),
            connect_timeout=_CONNECT_TIMEOUT_SECONDS,
            autocommit=True,
        )
    except psycopg.OperationalError as exc:
        if _is_auth_failure(exc):
            raise ProviderRefusedError(
                f"PostgreSQL {address.scope} refused the login of role {credential.credential_id}"
            ) from None
        raise TransientError(f"PostgreSQL {address.scope} unreachable ({exc.__class__.__name__})") from None


def _is_auth_failure(exc: Exception) -> bool:
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        return str(sqlstate).startswith(_AUTH_FAILURE_PREFIX)
    # libpq reports some authentication failures before any SQLSTATE reaches the client.
    text = str(exc).lower()
    return "password authentication failed" in text or "does not exist" in text


async def accepts(address: PostgresAddress, credential: Credential) -> bool:
    try:
        connection = await connect(address, credential)
    except ProviderRefusedError:
        return False
    async with connection:
        cursor = await connection.execute("SELECT current_user")
        row = await cursor.fetchone()
    return row is not None and row[0] == credential.credential_id


async def set_password(connection: psycopg.AsyncConnection[TupleRow], role: str, password: Credential) -> None:
    """Set `role`'s password over `connection` (the role itself, or an admin)."""
    import psycopg
    from psycopg import sql

    # PBKDF2 with 4096 iterations (~4 ms of CPU): off the event loop, which other rotations share.
    verifier = (
        await asyncio.to_thread(
            connection.pgconn.encrypt_password, password.secret.reveal().encode(), role.encode(), b"scram-sha-256"
        )
    ).decode()
    statement = sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
    try:
        await connection.execute(statement)
    except psycopg.errors.InsufficientPrivilege:
        raise ProviderRefusedError(f"PostgreSQL refused to change the password of role {role}") from None
    except psycopg.errors.UndefinedObject:
        raise ProviderRefusedError(f"PostgreSQL role {role} does not exist") from None
    except psycopg.OperationalError as exc:
        raise TransientError(f"PostgreSQL failed while changing role {role} ({exc.__class__.__name__})") from None
