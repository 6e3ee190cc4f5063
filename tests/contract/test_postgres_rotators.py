"""Every built-in rotator through one suite against the real PostgreSQL: each step run twice.

What a rotator must guarantee the engine: `scope` parses its address; `apply` makes the provider accept
the new credential and is harmless when repeated; `accepts` is a real login that says no to a wrong
password; `render`/`parse` round-trip the secret value; errors never carry a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from secret_rotation.errors import ConfigurationError, ProviderRefusedError
from secret_rotation.registry import RotatorRegistry
from secret_rotation.rotator import ApplyRequest, Credential, Rotator
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.stack import Postgres

pytestmark = pytest.mark.integration


@dataclass
class Case:
    rotator: Rotator
    config: RotationConfig
    current: Credential
    target_id: str
    admin: Credential | None


async def _case(name: str, postgres: Postgres) -> Case:
    rotator = RotatorRegistry().get(name)
    role, password = await postgres.create_role("contract")
    if name == "postgres-role":
        config = RotationConfig(name, role, postgres.address, 60)
        return Case(rotator, config, Credential(role, SecretValue(password)), role, None)
    admin, admin_password = await postgres.create_role("contract_admin", createrole=True)
    other, _ = await postgres.create_role("contract_green")
    config = RotationConfig(name, role, postgres.address, 60, alternate_credential_id=other, admin_secret_name="adm")
    return Case(
        rotator, config, Credential(role, SecretValue(password)), other, Credential(admin, SecretValue(admin_password))
    )


@pytest.fixture(params=["postgres-dual-user", "postgres-role"])  # management-API rotators: own contract files
async def case(request: pytest.FixtureRequest, postgres: Postgres) -> Case:
    return await _case(request.param, postgres)


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
