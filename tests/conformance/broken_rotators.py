"""Deliberately broken rotators under the conformance kit. Not collected by the suite (the file name does
not start with test_): `test_kit_catches_broken_rotators.py` runs it in a pytest process of its own and
checks that the kit fails each one, so the leaking rotator's log lines never reach the main session.
"""

from __future__ import annotations

import logging

import psycopg
import pytest
from psycopg import sql

from rotators.postgres_role import PostgresRoleRotator
from secret_rotation.conformance import ConformanceCase, RotatorConformance
from secret_rotation.rotator import ApplyRequest, Credential
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.conformance.cases import postgres_role_case

logger = logging.getLogger("broken_rotator")


class AppliesInGenerate(PostgresRoleRotator):
    """Sets the role's password while generating it, before the engine has stored it anywhere."""

    admin_dsn = ""

    def generate(self, config: RotationConfig, credential_id: str) -> SecretValue:
        value = super().generate(config, credential_id)
        with psycopg.connect(self.admin_dsn, autocommit=True) as connection:
            statement = sql.SQL("ALTER ROLE {} PASSWORD {}")
            connection.execute(statement.format(sql.Identifier(credential_id), sql.Literal(value.reveal())))
        return value


class LyingAccepts(PostgresRoleRotator):
    """Says every credential logs in, without trying."""

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        return True


class LogsItsValue(PostgresRoleRotator):
    async def apply(self, request: ApplyRequest) -> None:
        logger.info("setting the password of %s to %s", request.new.credential_id, request.new.secret.reveal())
        await super().apply(request)


class TestAppliesInGenerate(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, conformance_env: dict[str, str]) -> ConformanceCase:
        AppliesInGenerate.admin_dsn = conformance_env["PG_ADMIN_DSN"]
        return postgres_role_case(conformance_env, AppliesInGenerate)


class TestLyingAccepts(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, conformance_env: dict[str, str]) -> ConformanceCase:
        return postgres_role_case(conformance_env, LyingAccepts)


class TestLogsItsValue(RotatorConformance):
    @pytest.fixture
    def conformance_case(self, conformance_env: dict[str, str]) -> ConformanceCase:
        return postgres_role_case(conformance_env, LogsItsValue)
