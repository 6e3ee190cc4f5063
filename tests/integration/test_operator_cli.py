"""The operator CLI (`secret-rotation`, its installed console script) against the local stack: `plan` reads no
value and reports every misconfiguration, `rotate` shows the protocol's steps, `emergency` replaces both
credentials of a dual secret, `rollback` restores the previous credential of a dual secret and refuses a
single one, `status` tells the history."""

from __future__ import annotations

import json
import ssl
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import aiohttp
import pytest
from azure.keyvault.secrets.aio import SecretClient

from tests.support.cli import run_cli
from tests.support.host import LocalFunctionsHost
from tests.support.stack import (
    Postgres,
    near_expiry,
    open_vault,
    readable_values,
    seed_dual_secret,
    seed_role_secret,
    unique,
)

pytestmark = pytest.mark.integration

NOT_DUE = datetime.now(UTC) + timedelta(days=200)


async def _current(vault: SecretClient, name: str, leak: list[str]) -> tuple[str, dict[str, str]]:
    secret = await vault.get_secret(name)
    document = json.loads(secret.value or "{}")
    leak.append(document["password"])
    return secret.properties.version or "", document


async def _request_counts(env: dict[str, str], vault_url: str, *, reset: bool = False) -> dict[str, int]:
    """The Key Vault double's request log for one vault (GET /management/requests)."""
    context = ssl.create_default_context(cafile=env["KEYVAULT_CA_BUNDLE"])
    url = f"{env['KEYVAULT_MANAGEMENT_URL']}/requests" + ("/reset" if reset else "")
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            "POST" if reset else "GET", url, params={"vault": urlsplit(vault_url).netloc}, ssl=context
        ) as response,
    ):
        response.raise_for_status()
        counts: dict[str, int] = await response.json()
        return counts


async def test_plan_reports_every_misconfiguration_without_reading_a_value(
    stack_environ: dict[str, str], postgres: Postgres
) -> None:
    vault_url = stack_environ["KEYVAULT_URL_2"]
    prefix = unique("plan")
    good = {
        "RotatorType": "postgres-role",
        "CredentialId": "app",
        "ProviderAddress": postgres.address,
        "ValidityPeriodDays": "60",
    }
    dual = {**good, "RotatorType": "postgres-dual-user", "AlternateCredentialId": "app2"}
    cases: dict[str, tuple[dict[str, str], datetime | None, str | None]] = {
        "ok-due": (good, near_expiry(), None),
        "ok-later": (good, NOT_DUE, None),
        "missing": ({"RotatorType": "postgres-role"}, near_expiry(), "missing tag CredentialId"),
        "validity": ({**good, "ValidityPeriodDays": "30"}, near_expiry(), "ValidityPeriodDays=30"),
        "no-expiry": (good, None, "no expiry date"),
        "scope": ({**good, "ProviderAddress": "postgresql://10.0.0.1:5432/db"}, near_expiry(), "outside"),
        "unknown": ({**good, "RotatorType": "no-such-rotator"}, near_expiry(), "unknown rotator"),
        "budget": ({**good, **{f"Team{i}": "x" for i in range(10)}}, near_expiry(), "Key Vault allows 15"),
        "conflict": ({**dual, "AlternateCredentialId": "app"}, near_expiry(), "must differ"),
        "single-alt": ({**good, "AlternateCredentialId": "app2"}, near_expiry(), "conflicting tags"),
        # The pending record `<name>--rotation-pending` must fit in 127 characters: 109 do, 110 do not.
        "n" * (108 - len(prefix)): (good, near_expiry(), None),
        "n" * (109 - len(prefix)): (good, near_expiry(), "name too long"),
    }
    async with open_vault(stack_environ, vault_url) as vault:
        for case, (tags, expires, _) in cases.items():
            await vault.set_secret(f"{prefix}-{case}", "not-a-real-password", tags=tags, expires_on=expires)
        await vault.set_secret(f"{prefix}-untagged", "plain", tags={"owner": "someone"})

    await _request_counts(stack_environ, vault_url, reset=True)
    result = await run_cli("plan", vault_url, "--json")
    counts = await _request_counts(stack_environ, vault_url)
    assert counts["get"] == 0 and counts["list"] >= 1, f"plan read a value or listed nothing: {counts}"

    assert result.code == 1, "misconfigured secrets make plan fail"
    document = result.json()
    assert document["ok"] is False
    entries = {e["name"]: e for e in document["entries"] if e["name"].startswith(prefix)}
    for case, (_, _, expected) in cases.items():
        entry = entries[f"{prefix}-{case}"]
        if expected is None:
            assert entry["problems"] == [], (case, entry["problems"])
        else:
            assert any(expected in problem for problem in entry["problems"]), (case, entry["problems"])
    assert entries[f"{prefix}-ok-due"]["when"] == "due now"
    assert entries[f"{prefix}-ok-later"]["when"].startswith("from ")
    assert entries[f"{prefix}-ok-due"]["rotator"] == "postgres-role"
    assert f"{prefix}-untagged" in document["untagged"] and f"{prefix}-untagged" not in entries

    human = await run_cli("plan", vault_url, env={"COLUMNS": "400"})  # rich folds to 80 columns in a pipe
    assert human.code == 1 and f"{prefix}-validity" in human.out and "misconfigured" in human.out


async def test_rotate_shows_the_protocol_steps_and_status_tells_the_history(
    stack_environ: dict[str, str], vault: SecretClient, postgres: Postgres, leak_check: list[str]
) -> None:
    seeded = await seed_role_secret(vault, postgres, leak_check, "cli-rotate")
    result = await run_cli("rotate", stack_environ["KEYVAULT_URL"], seeded.name)
    assert result.code == 0, result.err
    protocol = ["created", "applied", "promoted", "completed"]  # verify is not recorded on its own
    shown = [line.split(": ")[1].split(" (")[0] for line in result.err.splitlines() if seeded.name in line]
    assert shown == protocol, result.err
    assert "SecretRotated" in result.out

    rotated = await vault.get_secret(seeded.name)
    leak_check.append(rotated.value or "")
    assert await postgres.logs_in(seeded.role, rotated.value or "")

    status = await run_cli("status", stack_environ["KEYVAULT_URL"], seeded.name, "--json")
    assert status.code == 0
    history = status.json()["history"]
    assert [row["origin"] for row in history] == ["outside the service", "rotation"]
    assert history[-1]["rotated_from"] == seeded.version and status.json()["pending"] is None
    assert "completed" in status.json()["last_outcome"]

    missing = await run_cli("status", stack_environ["KEYVAULT_URL"], unique("missing"))
    assert missing.code == 1

    outside = await run_cli("rotate", "https://other.vault.azure.net", seeded.name)
    assert outside.code == 3 and "ROTATION_ALLOWED_VAULTS" in outside.err


async def test_emergency_on_a_dual_secret_replaces_both_credentials(
    stack_environ: dict[str, str], vault: SecretClient, postgres: Postgres, leak_check: list[str]
) -> None:
    dual = await seed_dual_secret(vault, postgres, leak_check, "cli-emergency", green_password=True, expires_on=NOT_DUE)
    blue, green = dual.blue, dual.green
    vault_url = stack_environ["KEYVAULT_URL"]

    declined = await run_cli("emergency", vault_url, dual.name, stdin="n\n")
    assert declined.code == 3 and "both credentials" in declined.err
    assert len(await readable_values(vault, dual.name)) == 1, "declined: nothing changed"

    result = await run_cli("emergency", vault_url, dual.name, "--yes", "--json")
    assert result.code == 0, result.err
    assert result.json()["credentialsReplaced"] is True
    assert [o["status"] for o in result.json()["outcomes"]] == ["SecretRotated", "SecretRotated"]

    assert not await postgres.logs_in(blue, dual.blue_password), "the exposed password is dead"
    assert not await postgres.logs_in(green, dual.green_password), "the inactive user's password changed too"
    versions = await readable_values(vault, dual.name)
    leak_check.extend(json.loads(value)["password"] for _, value, _ in versions)
    assert len(versions) == 3
    _, newest = await _current(vault, dual.name, leak_check)
    assert newest["username"] == blue and await postgres.logs_in(blue, newest["password"]), "the newest works"
    # Versions created in one second list in any order: find green's by its user, not its position.
    (green_password,) = [json.loads(value)["password"] for _, value, _ in versions if green in value]
    assert await postgres.logs_in(green, green_password), "the alternate (never exposed) still works"


async def test_rollback_restores_the_previous_dual_credential_and_refuses_a_single_one(
    stack_environ: dict[str, str], vault: SecretClient, postgres: Postgres, leak_check: list[str]
) -> None:
    vault_url = stack_environ["KEYVAULT_URL"]
    dual = await seed_dual_secret(vault, postgres, leak_check, "cli-rollback", expires_on=NOT_DUE)
    blue, green = dual.blue, dual.green
    assert (await run_cli("rotate", vault_url, dual.name)).code == 0
    rotated_version, rotated = await _current(vault, dual.name, leak_check)
    assert rotated["username"] == green

    result = await run_cli("rollback", vault_url, dual.name, "--json")
    assert result.code == 0, result.err
    assert result.json()["restored_from"] == dual.version
    restored_version, restored = await _current(vault, dual.name, leak_check)
    assert restored_version not in (dual.version, rotated_version), "a new version"
    assert restored == {"username": blue, "password": dual.blue_password}
    assert await postgres.logs_in(blue, restored["password"]), "the restored version works"
    tags = (await vault.get_secret(dual.name)).properties.tags or {}
    assert tags["CredentialId"] == blue and tags["AlternateCredentialId"] == green
    status = await run_cli("status", vault_url, dual.name, "--json")
    assert [row["origin"] for row in status.json()["history"]][-1] == "rollback"

    single = await seed_role_secret(vault, postgres, leak_check, "cli-single")
    assert (await run_cli("rotate", vault_url, single.name)).code == 0
    before = await readable_values(vault, single.name)
    leak_check.extend(value for _, value, _ in before)
    refused = await run_cli("rollback", vault_url, single.name)
    assert refused.code == 3 and "emergency" in refused.err and "single-credential" in refused.err
    assert await readable_values(vault, single.name) == before, "refused: nothing changed"

    # What it points to: one rotation kills the current password of a single-credential secret.
    assert (await run_cli("emergency", vault_url, single.name, "--yes")).code == 0
    _, exposed, _ = before[-1]
    newest = await vault.get_secret(single.name)
    leak_check.append(newest.value or "")
    assert not await postgres.logs_in(single.role, exposed) and await postgres.logs_in(single.role, newest.value or "")


async def test_rotate_enqueue_hands_an_on_demand_job_to_the_worker(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    seeded = await seed_role_secret(vault, postgres, leak_check, "cli-enqueue")
    await vault.update_secret_properties(seeded.name, seeded.version, expires_on=NOT_DUE)
    result = await run_cli("rotate", stack_environ["KEYVAULT_URL"], seeded.name, "--enqueue", "--json")
    assert result.code == 0 and result.json()["status"] == 202, result.out

    deliveries = await host.drain_queue(stack_environ["AzureWebJobsStorage"], stack_environ["ROTATION_QUEUE_NAME"])
    assert [d.error for d in deliveries] == [None]
    rotated = await vault.get_secret(seeded.name)
    leak_check.append(rotated.value or "")
    assert rotated.properties.version != seeded.version, "the worker rotated it although it was not due"
