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

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SECRET = "demo-db-password"
ROLE = "demo_app"
VALIDITY_DAYS = 60


class _Outcomes(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        print(f"  outcome: {record.getMessage()}")


async def main() -> int:
    import psycopg
    from azure.core.exceptions import ResourceNotFoundError
    from azure.identity.aio import ManagedIdentityCredential
    from azure.keyvault.secrets.aio import SecretClient
    from psycopg import sql

    from tests.doubles.stack_env import load_stack_env
    from tests.support.events import key_vault_event
    from tests.support.host import app_host
    from tests.support.stack import time_shift

    env = load_stack_env()
    os.environ.update(env)
    logging.basicConfig(level=logging.ERROR)  # the library's own chatter stays quiet
    outcomes = logging.getLogger("secret_rotation")
    outcomes.addHandler(_Outcomes())
    outcomes.setLevel(logging.INFO)
    outcomes.propagate = False
    address = f"postgresql://{env['PGHOST']}:{env['PGPORT']}/postgres"
    print(
        f"local stack: Key Vault {env['KEYVAULT_URL']} | PostgreSQL {env['PGHOST']}:{env['PGPORT']} | "
        f"queue {env['ROTATION_QUEUE_NAME']} on Azurite"
    )

    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"])
    vault = SecretClient(
        env["KEYVAULT_URL"],
        credential,
        api_version=env["KEYVAULT_API_VERSION"],
        verify_challenge_resource=False,
        connection_verify=env["KEYVAULT_CA_BUNDLE"],
    )
    async with vault, credential:
        try:
            current = await vault.get_secret(SECRET)
        except ResourceNotFoundError:
            password = secrets.token_urlsafe(24)
            async with await psycopg.AsyncConnection.connect(env["PG_ADMIN_DSN"], autocommit=True) as admin:
                exists = await (await admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,))).fetchone()
                verb = "ALTER" if exists else "CREATE"
                await admin.execute(
                    sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(ROLE), sql.Literal(password))
                )
            current = await vault.set_secret(
                SECRET,
                password,
                tags={
                    "RotatorType": "postgres-role",
                    "CredentialId": ROLE,
                    "ProviderAddress": address,
                    "ValidityPeriodDays": str(VALIDITY_DAYS),
                },
                expires_on=datetime.now(UTC) + timedelta(days=10),
            )
            print(f"seeded role {ROLE} and secret {SECRET}, version {current.properties.version}, expiring in 10 days")
        expires = current.properties.expires_on
        if expires and expires - datetime.now(UTC) > timedelta(days=30):
            days = (expires - datetime.now(UTC)).days - 10
            await time_shift(env, days=days)
            print(f"moved the vault's clock {days} days on: version {current.properties.version} is near expiry")
        old_version = current.properties.version or ""
        old_password = current.value or ""

        host = app_host()
        event = key_vault_event(env["KEYVAULT_URL"], SECRET, old_version)
        print(f"delivering {event['eventType']} for {SECRET}/{old_version} to on_secret_near_expiry")
        await host.deliver_event(event)
        print("draining the rotation queue into rotation_worker")
        deliveries = await host.drain_queue(env["AzureWebJobsStorage"], env["ROTATION_QUEUE_NAME"])
        failed = [d for d in deliveries if d.error is not None]
        if failed or not deliveries:
            print(f"FAILED: {len(deliveries)} message(s) delivered, {len(failed)} failed", file=sys.stderr)
            return 1

        rotated = await vault.get_secret(SECRET)
        new_password = rotated.value or ""

    async def logs_in(password: str) -> bool:
        try:
            conn = await psycopg.AsyncConnection.connect(
                host=env["PGHOST"],
                port=int(env["PGPORT"]),
                dbname="postgres",
                user=ROLE,
                password=password,
            )
        except psycopg.OperationalError:
            return False
        await conn.close()
        return True

    new_ok, old_ok = await logs_in(new_password), await logs_in(old_password)
    print(
        f"rotated {SECRET}: version {old_version} -> {rotated.properties.version}, "
        f"expires {rotated.properties.expires_on:%Y-%m-%d}"
    )
    print(
        f"verified: new version (read back with the managed identity) logs in as {ROLE}: {new_ok}; "
        f"previous password refused: {not old_ok}"
    )
    await app_host().app_module.service().close()
    return 0 if new_ok and not old_ok and rotated.properties.version != old_version else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
