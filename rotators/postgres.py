"""PostgreSQL access shared by the PostgreSQL rotators: address parsing, login test, password change.

`ProviderAddress` is `postgresql://host[:port]/database[?sslmode=...]` with no user or password in it
(credentials live in Key Vault, never in tags); the database name is percent-decoded like any URL path
(`/my%20db` is the database "my db"). A password is changed with `ALTER ROLE ... PASSWORD` carrying a
SCRAM-SHA-256 verifier computed on the client by libpq, so the clear-text password never reaches the
server's statement log and the server's `password_encryption` setting does not matter; the role name is
quoted as an identifier by psycopg.

A failed connection is told apart by what the operator must fix: a refused login (SQLSTATE class 28:
wrong password, no such role, pg_hba.conf), a missing database (3D000) or CONNECT privilege (42501),
both configuration errors naming the database, or an outage (anything else: retryable).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, unquote, urlsplit

from secret_rotation.errors import ConfigurationError, ProviderRefusedError, RotationError, TransientError
from secret_rotation.rotator import Credential

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

_ALLOWED_SSLMODES = frozenset({"disable", "prefer", "require", "verify-ca", "verify-full"})
# SQLSTATEs (PostgreSQL docs, Appendix A): class 28 is invalid authorization (wrong password, no such
# role, login not allowed, no pg_hba.conf entry); 3D000 invalid_catalog_name is a database that does not
# exist; 42501 insufficient_privilege at connect time is a missing CONNECT privilege on the database.
_AUTH_FAILURE_CLASS = "28"
_UNDEFINED_DATABASE = "3D000"
_INSUFFICIENT_PRIVILEGE = "42501"
# libpq hands the client no SQLSTATE for a failed connection, only the server's message text, so these
# are the server's own messages (src/backend/libpq/auth.c `auth_failed`, hba.c, utils/init/miscinit.c
# and postinit.c) and libpq's for a missing password. The database messages are matched with the exact
# database name we asked for (see _classify_connect_failure).
_AUTH_FAILURE_TEXTS = (
    'authentication failed for user "',  # password, SCRAM, ident, peer, LDAP, ... (28P01 / 28000)
    "no pg_hba.conf entry for host",
    "pg_hba.conf rejects connection",
    "is not permitted to log in",
    "fe_sendauth: no password supplied",
)
_CONNECT_TIMEOUT_SECONDS = 10
# PostgreSQL 16 restricted CREATEROLE: altering another role needs ADMIN OPTION on it (release notes 16,
# "Restrict the privileges of CREATEROLE and its ability to modify other roles").
_ADMIN_OPTION_SINCE = 160000


@dataclass(frozen=True)
class PostgresAddress:
    host: str
    port: int
    database: str
    sslmode: str

    @property
    def scope(self) -> str:
        # Re-encoded, so `/my db` and `/my%20db` are one scope in ROTATION_ALLOWED_SCOPES.
        return f"postgresql://{self.host}:{self.port}/{quote(self.database, safe='')}"

    @classmethod
    def parse(cls, address: str) -> PostgresAddress:
        parts = urlsplit(address)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigurationError(f"ProviderAddress {address!r} must start with postgresql://")
        if parts.username or parts.password:
            raise ConfigurationError("ProviderAddress must not carry a user or password")
        raw_database = parts.path.removeprefix("/")
        if not parts.hostname or not raw_database or "/" in raw_database:
            raise ConfigurationError(f"ProviderAddress {address!r} must be postgresql://host[:port]/database")
        try:
            # urlsplit leaves the path percent-encoded; the server knows the database by its decoded name.
            database = unquote(raw_database, errors="strict")
        except UnicodeDecodeError:
            raise ConfigurationError(f"ProviderAddress {address!r}: the database name is not UTF-8") from None
        if "\x00" in database:
            raise ConfigurationError(f"ProviderAddress {address!r}: the database name contains a NUL byte")
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
    """A connection logged in as `credential`; raises ProviderRefusedError (login refused),
    ConfigurationError (no such database, no CONNECT privilege) or TransientError (anything else)."""
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
        # The server's text is never passed on: it names only what we sent, but one rule is simpler.
        raise _classify_connect_failure(exc, address, credential.credential_id) from None


def _classify_connect_failure(exc: Exception, address: PostgresAddress, role: str) -> RotationError:
    """What a failed connection means for the operator; by SQLSTATE when there is one, else by text."""
    sqlstate = str(getattr(exc, "sqlstate", None) or "")
    text = str(exc)
    # PostgreSQL checks the database only after a successful authentication (postinit.c), so a missing
    # database says the credential is fine and ProviderAddress is wrong.
    if sqlstate == _UNDEFINED_DATABASE or f'database "{address.database}" does not exist' in text:
        return ConfigurationError(
            f'PostgreSQL {address.host}:{address.port}: database "{address.database}" does not exist; '
            "fix the database in the ProviderAddress tag"
        )
    if sqlstate.startswith(_AUTH_FAILURE_CLASS) or any(marker in text for marker in _AUTH_FAILURE_TEXTS):
        return ProviderRefusedError(f"PostgreSQL {address.scope} refused the login of role {role}")
    if sqlstate == _INSUFFICIENT_PRIVILEGE or f'permission denied for database "{address.database}"' in text:
        # The password was accepted, so this is not "the provider refuses the credential" (`accepts` says
        # False for that, and the engine would retry verification in vain): an operator must grant it.
        return ConfigurationError(
            f'PostgreSQL {address.scope}: role {role} may not connect to database "{address.database}" '
            "(no CONNECT privilege)"
        )
    return TransientError(f"PostgreSQL {address.scope} unreachable ({exc.__class__.__name__})")


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
        if connection.info.server_version >= _ADMIN_OPTION_SINCE:
            admin = connection.info.user
            needs = f"CREATEROLE and ADMIN OPTION on {role} (GRANT {role} TO {admin} WITH ADMIN OPTION)"
        else:
            needs = "CREATEROLE"
        raise ProviderRefusedError(
            f"PostgreSQL refused to change the password of role {role}: the admin role needs {needs}"
        ) from None
    except psycopg.errors.UndefinedObject:
        raise ProviderRefusedError(f"PostgreSQL role {role} does not exist") from None
    except psycopg.OperationalError as exc:
        raise TransientError(f"PostgreSQL failed while changing role {role} ({exc.__class__.__name__})") from None
