"""The service's main job on the local stack: one real rotation of a PostgreSQL password, end to end.

Seeds a PostgreSQL role and a Key Vault secret near expiry (first run), or moves the vault's clock
until the current version is near expiry (later runs), then delivers a `SecretNearExpiry` event to the
registered Event Grid function, drains the Storage queue into the queue function as the Functions host
would, and checks the result with a real login. Prints versions and outcomes, never a value.

Run it through `scripts/run-demo.sh` (which installs and starts the stack first).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

if TYPE_CHECKING:
    from azure.keyvault.secrets import KeyVaultSecret
    from azure.keyvault.secrets.aio import SecretClient

DEMO_SECRET_NAME = "demo-db-password"  # noqa: S105 (a secret's name)
ROLE = "demo_app"
VALIDITY_DAYS = 60


class _PrintOutcomes(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"  outcome: {record.getMessage()}")


async def _seed(vault: SecretClient, env: dict[str, str]) -> KeyVaultSecret:
    """The demo secret; created with a fresh role password on the first run."""
    import psycopg
    from azure.core.exceptions import ResourceNotFoundError
    from psycopg import sql

    try:
        return await vault.get_secret(DEMO_SECRET_NAME)
    except ResourceNotFoundError:
        pass
    password = secrets.token_urlsafe(24)
    async with await psycopg.AsyncConnection.connect(env["PG_ADMIN_DSN"], autocommit=True) as admin:
        exists = await (await admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))).fetchone()
        statement = "ALTER ROLE {} LOGIN PASSWORD {}" if exists else "CREATE ROLE {} LOGIN PASSWORD {}"
        await admin.execute(sql.SQL(statement).format(sql.Identifier(ROLE), sql.Literal(password)))
    secret = await vault.set_secret(
        DEMO_SECRET_NAME,
        password,
        tags={
            "RotatorType": "postgres-role",
            "CredentialId": ROLE,
            "ProviderAddress": f"postgresql://{env['PGHOST']}:{env['PGPORT']}/postgres",
            "ValidityPeriodDays": str(VALIDITY_DAYS),
        },
        expires_on=datetime.now(UTC) + timedelta(days=10),
    )
    print(f"seeded role {ROLE} and secret {DEMO_SECRET_NAME} {secret.properties.version}, expiring in 10 days")
    return secret


async def _make_due(secret: KeyVaultSecret, env: dict[str, str]) -> None:
    from tests.support.stack import time_shift

    expires = secret.properties.expires_on
    if expires and expires - datetime.now(UTC) > timedelta(days=30):
        days = (expires - datetime.now(UTC)).days - 10
        await time_shift(env, days=days)
        print(f"moved the vault's clock {days} days on: {secret.properties.version} is now near expiry")


async def _logs_in(env: dict[str, str], password: str) -> bool:
    import psycopg

    try:
        connection = await psycopg.AsyncConnection.connect(
            host=env["PGHOST"], port=int(env["PGPORT"]), dbname="postgres", user=ROLE, password=password
        )
    except psycopg.OperationalError:
        return False
    await connection.close()
    return True


async def main() -> int:
    from secret_rotation.stack_env import load_stack_env
    from tests.support.events import key_vault_event
    from tests.support.host import app_host
    from tests.support.stack import open_vault

    env = load_stack_env()
    os.environ.update(env)
    logging.basicConfig(level=logging.ERROR)  # the libraries' own chatter stays quiet
    outcomes = logging.getLogger("secret_rotation")
    outcomes.addHandler(_PrintOutcomes())
    outcomes.setLevel(logging.INFO)
    outcomes.propagate = False
    print(
        f"local stack: Key Vault {env['KEYVAULT_URL']} | PostgreSQL {env['PGHOST']}:{env['PGPORT']} | "
        f"queue {env['ROTATION_QUEUE_NAME']} on Azurite"
    )

    host = app_host()
    async with open_vault(env) as vault:
        before = await _seed(vault, env)
        await _make_due(before, env)
        version = before.properties.version or ""
        event = key_vault_event(env["KEYVAULT_URL"], DEMO_SECRET_NAME, version)
        print(f"delivering {event['eventType']} for {DEMO_SECRET_NAME}/{version} to on_secret_near_expiry")
        await host.deliver_event(event)
        print("draining the rotation queue into rotation_worker")
        deliveries = await host.drain_queue(env["AzureWebJobsStorage"], env["ROTATION_QUEUE_NAME"])
        after = await vault.get_secret(DEMO_SECRET_NAME)
    await host.app_module.service().close()

    if not deliveries or any(d.error for d in deliveries):
        print(f"FAILED: {len(deliveries)} message(s) delivered, some failed (see the outcomes)", file=sys.stderr)
        return 1
    new_ok = await _logs_in(env, after.value or "")
    old_refused = not await _logs_in(env, before.value or "")
    print(
        f"rotated {DEMO_SECRET_NAME}: {version} -> {after.properties.version}, "
        f"expires {after.properties.expires_on:%Y-%m-%d}"
    )
    print(
        f"verified: the new version, read back with the managed identity, logs in as {ROLE}: {new_ok}; "
        f"the previous password is refused: {old_refused}"
    )
    return 0 if new_ok and old_refused and after.properties.version != version else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
