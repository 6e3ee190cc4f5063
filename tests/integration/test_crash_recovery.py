"""Crash injection at every boundary of the protocol, for both patterns, with hard stops.

Each case kills a worker process (`tests/support/crash_worker.py`) right before the first effect or
right after one of them (a Key Vault write or a provider change), observes the invariants in that
state, lets the lease expire, redelivers the same message to a fresh worker, and observes again.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.composition import Service
from secret_rotation.outcomes import Status
from secret_rotation.pending import pending_name
from tests.support.crash_worker import CRASH_EXIT_CODE
from tests.support.events import key_vault_event
from tests.support.figures import record_figure
from tests.support.stack import Postgres, break_lock, readable_values, seed_dual_secret, seed_role_secret

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Scenario:
    name: str
    roles: list[str]
    body: str
    first_active: str
    first_password: str

    def password_for(self, role: str, value: str) -> str | None:
        if len(self.roles) == 1:
            return value
        document = json.loads(value)
        return str(document["password"]) if document.get("username") == role else None


async def _seed(
    pattern: str, env: dict[str, str], vault: SecretClient, postgres: Postgres, leak: list[str]
) -> Scenario:
    if pattern == "single":
        seeded = await seed_role_secret(vault, postgres, leak, "crash")
        name, roles, version = seeded.name, [seeded.role], seeded.version
        value = (await vault.get_secret(name)).value or ""
    else:
        dual = await seed_dual_secret(vault, postgres, leak, "crash-dual")
        name, roles, value, version = dual.name, [dual.blue, dual.green], dual.blue_password, dual.version
    body = json.dumps(key_vault_event(env["KEYVAULT_URL"], name, version))
    return Scenario(name, roles, body, roles[0], value)


async def _observe(scenario: Scenario, vault: SecretClient, postgres: Postgres, leak: list[str]) -> tuple[int, int]:
    """(roles whose password Key Vault does not hold, 1 if the newest version is rejected)."""
    stored = await readable_values(vault, scenario.name) + await readable_values(vault, pending_name(scenario.name))
    leak.extend(value for _, value, _ in stored)
    lost = 0
    for role in scenario.roles:
        candidates = []
        for _, value, tags in stored:
            if tags.get("RotationStep") == "completed":
                continue  # a closed record (disabled too, so not even listed here)
            password = scenario.password_for(role, value) if tags.get("CredentialId") == role else None
            if password:
                candidates.append(password)
        accepted = [c for c in candidates if await postgres.logs_in(role, c)]
        if await postgres.has_password(role) and not accepted:
            lost += 1
    newest = await vault.get_secret(scenario.name)
    tags = newest.properties.tags or {}
    password = scenario.password_for(tags["CredentialId"], newest.value or "")
    newest_ok = password is not None and await postgres.logs_in(tags["CredentialId"], password)
    return lost, 0 if newest_ok else 1


async def _crash_worker(crash_at: int, body: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.crash_worker",
        str(crash_at),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
    )
    out, _ = await process.communicate(body.encode())
    return process.returncode or 0, out.decode()


@pytest.mark.parametrize("pattern", ["single", "dual"])
async def test_a_hard_crash_at_every_boundary_recovers_to_exactly_one_rotation(
    pattern: str,
    stack_environ: dict[str, str],
    real_service: Service,
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
) -> None:
    probe = await _seed(pattern, stack_environ, vault, postgres, leak_check)
    code, out = await _crash_worker(-1, probe.body, stack_environ)
    assert code == 0, out
    run = json.loads(out.splitlines()[-1])
    assert run["status"] == "SecretRotated"
    effects: list[str] = run["effects"]
    boundaries = len(effects) + 1  # before the first effect, and after each one
    # Two CREATEs (pending record, promotion); the last effect closes the record with one update, and
    # only after it has the rotation finished: a redelivery after any earlier crash resumes it.
    assert effects.count("KeyVaultSecretStore.set") == 2, effects
    assert effects[-1] == "KeyVaultSecretStore.update", effects
    finished_at = len(effects)

    completed = lost_total = newest_rejected_total = 0
    window: list[int] = []
    for crash_at in range(boundaries):
        scenario = await _seed(pattern, stack_environ, vault, postgres, leak_check)
        code, out = await _crash_worker(crash_at, scenario.body, stack_environ)
        assert code == CRASH_EXIT_CODE, (crash_at, out)
        lost, newest_rejected = await _observe(scenario, vault, postgres, leak_check)
        lost_total += lost
        newest_rejected_total += newest_rejected
        if newest_rejected:
            window.append(crash_at)

        await break_lock(stack_environ, stack_environ["KEYVAULT_URL"], scenario.name)
        outcome = await real_service.worker.handle(scenario.body)
        expected = Status.SKIPPED if crash_at >= finished_at else Status.ROTATED
        assert outcome.status is expected, (crash_at, effects, outcome)

        versions = await readable_values(vault, scenario.name)
        pending = [p async for p in vault.list_properties_of_secret_versions(pending_name(scenario.name))]
        after_lost, after_rejected = await _observe(scenario, vault, postgres, leak_check)
        assert (len(versions), len(pending), after_lost, after_rejected) == (2, 1, 0, 0), crash_at
        # Closed: no credential-bearing pending version left enabled, whatever the crash point.
        assert [(p.enabled, (p.tags or {}).get("RotationStep")) for p in pending] == [(False, "completed")], crash_at
        still_old = await postgres.logs_in(scenario.first_active, scenario.first_password)
        assert still_old == (pattern == "dual"), crash_at
        completed += 1

    record_figure(f"crash points injected ({pattern})", boundaries)
    record_figure(f"rotations completed after recovery ({pattern})", completed)
    record_figure(f"credentials lost ({pattern})", lost_total)
    record_figure(f"moments the newest version was rejected by the provider ({pattern})", newest_rejected_total)
    assert completed == boundaries
    assert lost_total == 0
    if pattern == "dual":
        assert newest_rejected_total == 0
    else:
        # Single credential, changed in place: from the provider change until the promotion the new
        # password lives only in the pending record (docs/protocol.md, "Single-credential window").
        apply_at = effects.index("PostgresRoleRotator.apply") + 1
        promote_at = next(i for i, e in enumerate(effects) if e == "KeyVaultSecretStore.set" and i >= apply_at) + 1
        assert window == list(range(apply_at, promote_at)), (window, effects)
