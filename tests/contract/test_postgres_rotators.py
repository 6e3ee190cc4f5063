"""The PostgreSQL rotators through one suite against real PostgreSQL servers: each step run twice.

What a rotator must guarantee the engine: `scope` parses its address; `apply` makes the provider accept
the new credential and is harmless when repeated; `accepts` is a real login that says no to a wrong
password; `render`/`parse` round-trip the secret value; errors never carry a value and point at what to
fix. Every test that talks to a server runs on both of the stack's: Debian's PostgreSQL 15 and a current
major from PyPI, the two ends of what Azure Database for PostgreSQL offers, on both sides of PostgreSQL
16's change to CREATEROLE.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace

import psycopg
import pytest
from psycopg import sql

from rotators.postgres import PostgresAddress, connect
from secret_rotation.errors import ConfigurationError, ProviderRefusedError
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import ApplyRequest, Credential, Rotator
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.figures import record_figure
from tests.support.stack import Postgres

pytestmark = pytest.mark.integration


@dataclass
class Case:
    rotator: Rotator
    config: RotationConfig
    current: Credential
    target_id: str
    admin: Credential | None


POSTGRES_ROTATORS = ("postgres-dual-user", "postgres-role")


@pytest.fixture(scope="session", params=["postgres", "postgres_current"], ids=["pg-debian", "pg-current"])
def server(request: pytest.FixtureRequest) -> Postgres:
    """Each of the stack's two PostgreSQL servers (tests/conftest.py)."""
    postgres: Postgres = request.getfixturevalue(request.param)
    return postgres


async def _case(name: str, postgres: Postgres) -> Case:
    rotator = RotatorRegistry().get(name)
    role, password = await postgres.create_role("contract")
    if name == "postgres-role":
        config = RotationConfig(name, role, postgres.address, 60)
        return Case(rotator, config, Credential(role, SecretValue(password)), role, None)
    admin, admin_password = await postgres.create_role("contract_admin", createrole=True)
    other, _ = await postgres.create_role("contract_green")
    await postgres.grant_rotation_admin(admin, role, other)
    config = RotationConfig(name, role, postgres.address, 60, alternate_credential_id=other, admin_secret_name="adm")
    return Case(
        rotator, config, Credential(role, SecretValue(password)), other, Credential(admin, SecretValue(admin_password))
    )


def _on_database(config: RotationConfig, database: str) -> RotationConfig:
    """The same rotation with ProviderAddress naming another database (`database` as written in the tag)."""
    return replace(config, provider_address=f"{config.provider_address.rsplit('/', 1)[0]}/{database}")


@pytest.fixture(params=POSTGRES_ROTATORS)
async def case(request: pytest.FixtureRequest, server: Postgres) -> Case:
    return await _case(request.param, server)


async def test_the_two_servers_span_postgresql_16(postgres: Postgres, postgres_current: Postgres) -> None:
    # Without one server on each side, the ADMIN OPTION rule (16+) or the CREATEROLE-only rule (15) would
    # go untested while every test still passed.
    debian, current = await postgres.major(), await postgres_current.major()
    record_figure("PostgreSQL majors under the rotator contract tests", f"Debian {debian}, current {current}")
    assert debian < 16 <= current, (debian, current)


async def test_apply_twice_then_the_new_credential_logs_in(case: Case) -> None:
    case.rotator.validate(case.config)
    assert case.rotator.target_credential_id(case.config) == case.target_id
    new = Credential(case.target_id, case.rotator.generate(case.config, case.target_id))
    assert not await case.rotator.accepts(case.config, new)

    request = ApplyRequest(case.config, new, case.current, case.admin)
    await case.rotator.apply(request)
    if case.rotator.pattern.value == "single":
        # Repeating a single-credential apply authenticates with the old password, which is gone now:
        # the engine never does that (it asks `accepts` first), and the rotator must say so clearly.
        with pytest.raises(ProviderRefusedError) as refused:
            await case.rotator.apply(request)
        assert new.secret.reveal() not in str(refused.value)
    else:
        await case.rotator.apply(request)
    assert await case.rotator.accepts(case.config, new)
    assert await case.rotator.accepts(case.config, new), "accepts is side-effect free"


async def test_render_and_parse_round_trip(case: Case) -> None:
    credential = Credential(case.target_id, SecretValue("p@ss'word\"; DROP ROLE x; --"))
    rendered = case.rotator.render(credential)
    assert case.rotator.parse(case.target_id, rendered) == credential


async def test_a_password_with_sql_metacharacters_is_set_verbatim(case: Case) -> None:
    hostile = Credential(case.target_id, SecretValue("it's'); ALTER ROLE postgres PASSWORD 'x"))
    await case.rotator.apply(ApplyRequest(case.config, hostile, case.current, case.admin))
    assert await case.rotator.accepts(case.config, hostile)


@pytest.mark.parametrize(
    "address",
    [
        "mysql://127.0.0.1/db",
        "postgresql://user:pw@127.0.0.1/db",
        "postgresql://127.0.0.1/",
        "postgresql://127.0.0.1/db?sslmode=none",
        "postgresql://127.0.0.1/db?host=/tmp",
        "postgresql://127.0.0.1/a/b",
        "postgresql://127.0.0.1/nul%00byte",
        "postgresql://127.0.0.1/not%FFutf8",
    ],
)
def test_unusable_provider_addresses_are_configuration_errors(address: str) -> None:
    rotator = RotatorRegistry().get("postgres-role")
    with pytest.raises(ConfigurationError):
        rotator.scope(RotationConfig("postgres-role", "r", address, 60))


def test_dual_value_must_name_the_tagged_user() -> None:
    rotator = RotatorRegistry().get("postgres-dual-user")
    value = SecretValue(json.dumps({"username": "blue", "password": "x"}))
    with pytest.raises(ConfigurationError, match="names role 'blue'"):
        rotator.parse("green", value)


async def test_a_missing_database_is_a_configuration_error_naming_it(case: Case) -> None:
    # PostgreSQL authenticates first and checks the database afterwards (src/backend/utils/init/postinit.c:
    # `database "%s" does not exist`, SQLSTATE 3D000 invalid_catalog_name): the credentials are good,
    # the address is wrong, and the operator must fix ProviderAddress, not a password.
    config = _on_database(case.config, "no_such_db")
    new = Credential(case.target_id, case.rotator.generate(config, case.target_id))
    with pytest.raises(ConfigurationError, match='database "no_such_db" does not exist'):
        await case.rotator.apply(ApplyRequest(config, new, case.current, case.admin))
    login = case.admin or case.current
    with pytest.raises(ConfigurationError, match='database "no_such_db" does not exist'):
        await case.rotator.accepts(config, login)


async def test_a_percent_encoded_database_name_is_decoded(case: Case, server: Postgres) -> None:
    # A URL path is percent-encoded (RFC 3986 section 2.1), so a database called "rotation db" is written
    # `/rotation%20db`, as libpq's own connection URIs expect (PostgreSQL docs, "Connection URIs").
    await server.ensure_database("rotation db")
    config = _on_database(case.config, "rotation%20db")
    assert case.rotator.scope(config) == config.provider_address
    new = Credential(case.target_id, case.rotator.generate(config, case.target_id))
    await case.rotator.apply(ApplyRequest(config, new, case.current, case.admin))
    assert await case.rotator.accepts(config, new)


@pytest.mark.parametrize(
    ("raw", "database"),
    [("app%20db", "app db"), ("caf%C3%A9", "café"), ("a%2Fb", "a/b"), ("plain_db-1.x", "plain_db-1.x")],
)
def test_database_names_are_percent_decoded(raw: str, database: str) -> None:
    address = PostgresAddress.parse(f"postgresql://db.example:6432/{raw}?sslmode=require")
    assert (address.host, address.port, address.database, address.sslmode) == ("db.example", 6432, database, "require")


async def test_the_dual_admin_needs_admin_option_from_postgresql_16(server: Postgres) -> None:
    # PostgreSQL 16 release notes: "Restrict the privileges of CREATEROLE and its ability to modify other
    # roles ... Such changes ... now require the role requesting the change to have ADMIN OPTION
    # permission" (commit cf5eb37c5: CREATEROLE users may change the password only of roles they hold
    # ADMIN OPTION on). Up to 15, CREATEROLE alone was enough.
    rotator = RotatorRegistry().get("postgres-dual-user")
    admin, admin_password = await server.create_role("contract_admin", createrole=True)
    blue, _ = await server.create_role("contract_blue")
    green, _ = await server.create_role("contract_green")
    config = RotationConfig(
        rotator.name, blue, server.address, 60, alternate_credential_id=green, admin_secret_name="adm"
    )
    new = Credential(green, rotator.generate(config, green))
    request = ApplyRequest(
        config, new, Credential(blue, SecretValue("unused")), Credential(admin, SecretValue(admin_password))
    )
    if await server.major() < 16:
        await rotator.apply(request)
    else:
        with pytest.raises(ProviderRefusedError, match=f"ADMIN OPTION on {green}") as refused:
            await rotator.apply(request)
        assert f"GRANT {green} TO {admin} WITH ADMIN OPTION" in str(refused.value)
        assert not await rotator.accepts(config, new)
        await server.grant_rotation_admin(admin, green)  # the documented grant, least privilege form
        await rotator.apply(request)
    assert await rotator.accepts(config, new)


@pytest.mark.parametrize(
    ("situation", "error", "message"),
    [
        ("wrong_password", ProviderRefusedError, "refused the login of role"),
        ("no_such_role", ProviderRefusedError, "refused the login of role"),
        ("nologin_role", ProviderRefusedError, "refused the login of role"),
        ("pg_hba_refuses", ProviderRefusedError, "refused the login of role"),
        ("no_connect_privilege", ConfigurationError, "(no CONNECT privilege)"),
        ("missing_database", ConfigurationError, 'database "no_such_db" does not exist'),
    ],
)
async def test_each_failed_login_names_what_to_fix(
    server: Postgres, situation: str, error: type[Exception], message: str
) -> None:
    # The servers' own answers (libpq gives no SQLSTATE for a failed connection, only the text): class 28
    # from auth.c / hba.c / miscinit.c, 42501 and 3D000 from postinit.c.
    role, password = await server.create_role("login_probe")
    address = PostgresAddress.parse(server.address)
    if situation == "wrong_password":
        password = "not-the-password"
    elif situation == "no_such_role":
        role = "no_such_role_x"
    elif situation == "nologin_role":
        await server.admin("ALTER ROLE {} NOLOGIN", role)
    elif situation == "pg_hba_refuses":
        # The stack's pg_hba.conf lets only `postgres` use the Unix socket.
        socket_dir = dict(p.split("=", 1) for p in server.admin_dsn.split())["host"]
        address = PostgresAddress(socket_dir, server.port, address.database, "disable")
    elif situation == "no_connect_privilege":
        await server.ensure_database("rotation_no_connect")
        await server.admin("REVOKE CONNECT ON DATABASE {} FROM PUBLIC", "rotation_no_connect")
        address = PostgresAddress(address.host, address.port, "rotation_no_connect", address.sslmode)
    elif situation == "missing_database":
        address = PostgresAddress(address.host, address.port, "no_such_db", address.sslmode)
    with pytest.raises(error, match=re.escape(message)) as raised:
        await connect(address, Credential(role, SecretValue(password)))
    assert password not in str(raised.value)


async def test_the_new_password_is_stored_as_scram_whatever_password_encryption_says(
    case: Case, server: Postgres
) -> None:
    # The rotator sends a SCRAM-SHA-256 verifier computed by libpq (PQencryptPasswordConn with the
    # algorithm named), so a server or role still set to `password_encryption = md5` (deprecated in
    # PostgreSQL 18) cannot make it store an MD5 hash.
    changer = case.admin or case.current
    await server.admin("ALTER ROLE {} SET password_encryption = 'md5'", changer.credential_id)
    new = Credential(case.target_id, case.rotator.generate(case.config, case.target_id))
    await case.rotator.apply(ApplyRequest(case.config, new, case.current, case.admin))
    assert await server.password_scheme(case.target_id) == "SCRAM-SHA-256"
    assert await case.rotator.accepts(case.config, new)


async def test_roles_the_admin_created_itself_need_no_grant(server: Postgres) -> None:
    # Commit cf5eb37c5 (PostgreSQL 16): "When a CREATEROLE user who is not a superuser creates a role, grant
    # ADMIN OPTION on the newly-created role to the creator" (what docs/tags.md tells the operator).
    rotator = RotatorRegistry().get("postgres-dual-user")
    admin, admin_password = await server.create_role("contract_admin", createrole=True)
    blue, green = f"{admin}_blue", f"{admin}_green"
    async with await psycopg.AsyncConnection.connect(
        host=server.host, port=server.port, dbname="postgres", user=admin, password=admin_password, autocommit=True
    ) as as_admin:
        for role in (blue, green):
            await as_admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    config = RotationConfig(
        rotator.name, blue, server.address, 60, alternate_credential_id=green, admin_secret_name="a"
    )
    new = Credential(green, rotator.generate(config, green))
    await rotator.apply(
        ApplyRequest(
            config, new, Credential(blue, SecretValue("unused")), Credential(admin, SecretValue(admin_password))
        )
    )
    assert await rotator.accepts(config, new)


async def test_an_admin_without_createrole_is_refused_naming_it(server: Postgres) -> None:
    rotator = RotatorRegistry().get("postgres-dual-user")
    admin, admin_password = await server.create_role("contract_admin")
    blue, _ = await server.create_role("contract_blue")
    green, _ = await server.create_role("contract_green")
    config = RotationConfig(
        rotator.name, blue, server.address, 60, alternate_credential_id=green, admin_secret_name="a"
    )
    new = Credential(green, rotator.generate(config, green))
    with pytest.raises(ProviderRefusedError, match=f"refused to change the password of role {green}: .*CREATEROLE"):
        await rotator.apply(
            ApplyRequest(
                config, new, Credential(blue, SecretValue("unused")), Credential(admin, SecretValue(admin_password))
            )
        )
    assert not await rotator.accepts(config, new)
