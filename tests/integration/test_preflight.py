"""Preflight and Key Vault policies against the local stack: refusals leave the provider and the vault
untouched; a "Deny"-policy vault still rotates to completion (docs/protocol.md, "Preflight").

The double's per-secret RBAC and policy modes are pinned against Microsoft's documentation in
tests/doubles_fidelity; here they drive the real service end to end.
"""

from __future__ import annotations

from typing import Any

import pytest
from azure.keyvault.secrets.aio import SecretClient

from secret_rotation.outcomes import Status
from secret_rotation.pending import pending_name
from tests.support.host import LocalFunctionsHost
from tests.support.keyvault_double import KeyVaultDouble
from tests.support.stack import Postgres, SeededSecret, deliver_job, near_expiry, seed_role_secret

pytestmark = pytest.mark.integration

ROTATION_TAGS = 4  # RotatorType, CredentialId, ProviderAddress, ValidityPeriodDays (seed_role_secret)


async def _rotate(
    host: LocalFunctionsHost, env: dict[str, str], seeded: SeededSecret, caplog: pytest.LogCaptureFixture
) -> dict[str, Any]:
    """Deliver the secret's event to the queue function; its one outcome."""
    [outcome] = [o for o in await deliver_job(host, env, seeded, caplog) if o.get("secret_name") == seeded.name]
    return outcome


async def _pending_versions(vault: SecretClient, name: str) -> list[tuple[bool | None, str | None]]:
    return [
        (p.enabled, (p.tags or {}).get("RotationStep"))
        async for p in vault.list_properties_of_secret_versions(pending_name(name))
    ]


@pytest.mark.parametrize(("own_tags", "rotates"), [(13, True), (14, False)])
async def test_the_tag_budget_is_checked_before_the_provider_changes(
    own_tags: int,
    rotates: bool,
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    kv_double: KeyVaultDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    extra = {f"Team{index}": "x" for index in range(own_tags - ROTATION_TAGS)}
    seeded = await seed_role_secret(vault, postgres, leak_check, "budget", **extra)
    password = (await vault.get_secret(seeded.name)).value or ""
    await kv_double.call("POST", "requests/reset")

    outcome = await _rotate(host, stack_environ, seeded, caplog)

    counts = await kv_double.counts()
    if rotates:
        assert outcome["status"] == Status.ROTATED.value, outcome
        rotated = await vault.get_secret(seeded.name)
        leak_check.append(rotated.value or "")
        assert len(rotated.properties.tags or {}) == 15
        return
    assert outcome["status"] == Status.FAILED.value and outcome["step"] == "preflight", outcome
    assert "would carry 16 tags, Key Vault allows 15" in outcome["reason"]
    assert (counts["set"], counts["update"]) == (0, 0), "the double shows no write"
    assert await postgres.logs_in(seeded.role, password), "the provider's credential is unchanged"


@pytest.mark.parametrize(
    ("denied", "operations", "step", "record"),
    [
        ("secret", ["write"], "preflight", []),
        ("pending record", ["write"], "create", []),
        # A custom role with setSecret but not update: the record is created, then refused before apply.
        ("pending record", ["update"], "preflight", [(True, "created")]),
    ],
)
async def test_an_identity_that_may_not_write_is_refused_before_the_provider_changes(
    denied: str,
    operations: list[str],
    step: str,
    record: list[tuple[bool, str]],
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    kv_double: KeyVaultDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seeded = await seed_role_secret(vault, postgres, leak_check, "rbac")
    password = (await vault.get_secret(seeded.name)).value or ""
    target = seeded.name if denied == "secret" else pending_name(seeded.name)
    await kv_double.deny({"secret": target, "deny": operations})

    outcome = await _rotate(host, stack_environ, seeded, caplog)

    assert outcome["status"] == Status.FAILED.value and not outcome["retryable"], outcome
    assert outcome["step"] == step and "ForbiddenByRbac" in outcome["reason"], outcome
    assert await postgres.logs_in(seeded.role, password), "the provider is untouched"
    assert await _pending_versions(vault, seeded.name) == record

    if record:  # once the role is fixed, the open record resumes to a completed rotation
        await kv_double.reset()
        assert (await _rotate(host, stack_environ, seeded, caplog))["status"] == Status.ROTATED.value
        rotated = await vault.get_secret(seeded.name)
        leak_check.append(rotated.value or "")
        assert await postgres.logs_in(seeded.role, rotated.value or "")
        assert await _pending_versions(vault, seeded.name) == [(False, "completed")]


async def test_a_deny_policy_vault_rotates_a_secret_with_a_content_type_to_completion(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    kv_double: KeyVaultDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    typed = await seed_role_secret(vault, postgres, leak_check, "policy")
    await vault.update_secret_properties(typed.name, typed.version, content_type="text/plain")
    untyped = await seed_role_secret(vault, postgres, leak_check, "policy-untyped")
    untyped_password = (await vault.get_secret(untyped.name)).value or ""
    await kv_double.deny_by_policy(content_type=True, expiry=True)

    by_name = {seeded.name: await _rotate(host, stack_environ, seeded, caplog) for seeded in (typed, untyped)}
    assert by_name[typed.name]["status"] == Status.ROTATED.value, by_name[typed.name]
    rotated = await vault.get_secret(typed.name)
    leak_check.append(rotated.value or "")
    assert rotated.properties.content_type == "text/plain" and rotated.properties.expires_on is not None
    assert await postgres.logs_in(typed.role, rotated.value or "")
    assert await _pending_versions(vault, typed.name) == [(False, "completed")], "the pending record closed"
    # Without a content type the policy refuses the pending record's CREATE: before apply, so nothing changed.
    refused = by_name[untyped.name]
    assert refused["status"] == Status.FAILED.value and refused["step"] == "create", refused
    assert "ForbiddenByPolicy" in refused["reason"]
    assert await postgres.logs_in(untyped.role, untyped_password)


async def test_a_disabled_newest_version_is_reported_as_such(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Key Vault answers a get of a disabled version with 403 and inner error `SecretDisabled` (pinned in
    tests/doubles_fidelity): that is not an access problem, and the runbook says what to do."""
    seeded = await seed_role_secret(vault, postgres, leak_check, "disabled")
    await vault.update_secret_properties(seeded.name, seeded.version, enabled=False)

    outcome = await _rotate(host, stack_environ, seeded, caplog)

    assert outcome["status"] == Status.FAILED.value and not outcome["retryable"], outcome
    assert outcome["step"] == "load" and "the secret's newest version is disabled" in outcome["reason"], outcome
    assert "access denied" not in outcome["reason"]


async def test_a_soft_deleted_pending_record_name_is_a_configuration_error(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    postgres: Postgres,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Key Vault answers a write to a deleted-but-recoverable name with 409 and inner error
    `ObjectIsDeletedButRecoverable` (pinned in tests/doubles_fidelity): not a conflict to retry."""
    seeded = await seed_role_secret(vault, postgres, leak_check, "soft-deleted")
    password = (await vault.get_secret(seeded.name)).value or ""
    await vault.set_secret(pending_name(seeded.name), "placeholder-value", expires_on=near_expiry())
    await vault.delete_secret(pending_name(seeded.name))

    outcome = await _rotate(host, stack_environ, seeded, caplog)

    assert outcome["status"] == Status.FAILED.value and not outcome["retryable"], outcome
    assert outcome["step"] == "create" and "deleted but recoverable" in outcome["reason"], outcome
    assert await postgres.logs_in(seeded.role, password), "the provider is untouched"
