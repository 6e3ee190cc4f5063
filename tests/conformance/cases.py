"""Conformance cases of the built-in PostgreSQL rotators: fresh roles per seed, logins checked with
psycopg directly (never through the rotator)."""

from __future__ import annotations

import json

from rotators.postgres_dual_user import PostgresDualUserRotator
from rotators.postgres_role import PostgresRoleRotator
from secret_rotation.conformance import ConformanceCase, Seed
from secret_rotation.rotator import Credential, Rotator
from secret_rotation.secret_value import SecretValue
from tests.support.stack import Postgres


def postgres_of(env: dict[str, str]) -> Postgres:
    return Postgres(env["PG_ADMIN_DSN"], env["PGHOST"], int(env["PGPORT"]))


def postgres_role_case(env: dict[str, str], rotator: type[Rotator] = PostgresRoleRotator) -> ConformanceCase:
    postgres = postgres_of(env)

    async def seed() -> Seed:
        role, password = await postgres.create_role("conf")
        return Seed({"CredentialId": role, "ProviderAddress": postgres.address}, SecretValue(password))

    async def logs_in(credential: Credential) -> bool:
        return await postgres.logs_in(credential.credential_id, credential.secret.reveal())

    return ConformanceCase(rotator, seed, logs_in)


def postgres_dual_case(env: dict[str, str]) -> ConformanceCase:
    postgres = postgres_of(env)

    async def seed() -> Seed:
        admin, admin_password = await postgres.create_role("conf_admin", createrole=True)
        blue, blue_password = await postgres.create_role("conf_blue")
        green, _ = await postgres.create_role("conf_green")
        tags = {"CredentialId": blue, "AlternateCredentialId": green, "ProviderAddress": postgres.address}
        value = SecretValue(json.dumps({"username": blue, "password": blue_password}))
        return Seed(tags, value, admin=Credential(admin, SecretValue(admin_password)))

    async def logs_in(credential: Credential) -> bool:
        return await postgres.logs_in(credential.credential_id, credential.secret.reveal())

    # Without an admin secret the rotator cannot change the other role: refused before anything is stored.
    return ConformanceCase(PostgresDualUserRotator, seed, logs_in, bad_tags=[{"AdminSecretName": None}])
