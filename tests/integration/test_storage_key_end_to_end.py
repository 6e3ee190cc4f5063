"""A secret shaped exactly like Microsoft's dual-credential Storage tutorial, through both registered
functions, Azurite's queue, the Key Vault double, the management double and the account's own Azurite."""

from __future__ import annotations

import aiohttp
import pytest
from azure.keyvault.secrets.aio import SecretClient

from rotators.storage_account_key import StorageAccountKeyRotator
from secret_rotation.rotator import Credential, ProviderContext
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.events import key_vault_event
from tests.support.host import LocalFunctionsHost
from tests.support.management import ManagementControl, storage_keys
from tests.support.stack import near_expiry, outcomes, time_shift, unique

pytestmark = pytest.mark.integration


async def seed_tutorial_secret(
    vault: SecretClient, management_context: ProviderContext, address: str, leak: list[str], prefix: str = "storage-key"
) -> tuple[str, str]:
    """Microsoft's tutorial: value = key1, tags CredentialId, ProviderAddress, ValidityPeriodDays only."""
    keys = await storage_keys(management_context, address)
    leak.extend(keys.values())
    name = unique(prefix)
    secret = await vault.set_secret(
        name,
        keys["key1"],
        tags={"CredentialId": "key1", "ProviderAddress": address, "ValidityPeriodDays": "60"},
        expires_on=near_expiry(),
    )
    assert secret.properties.version
    return name, secret.properties.version


async def _accepted(management_context: ProviderContext, address: str, key_name: str, value: str) -> bool:
    config = RotationConfig("storage-account-key", "key1", address, 60)
    return await StorageAccountKeyRotator(management_context).accepts(config, Credential(key_name, SecretValue(value)))


async def _rotate(host: LocalFunctionsHost, env: dict[str, str], name: str, version: str) -> None:
    await host.deliver_event(key_vault_event(env["KEYVAULT_URL"], name, version))
    deliveries = await host.drain_queue(env["AzureWebJobsStorage"], env["ROTATION_QUEUE_NAME"])
    assert [d.error for d in deliveries] == [None]


async def test_the_tutorial_secret_rotates_key2_then_key1_and_the_previous_key_keeps_working(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    management_context: ProviderContext,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = stack_environ["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    name, version = await seed_tutorial_secret(vault, management_context, address, leak_check)
    first_key1 = (await vault.get_secret(name)).value or ""

    await _rotate(host, stack_environ, name, version)
    second = await vault.get_secret(name)
    leak_check.append(second.value or "")
    keys = await storage_keys(management_context, address)
    assert second.properties.tags and second.properties.tags["CredentialId"] == "key2"
    assert "AlternateCredentialId" not in second.properties.tags, "no tag the tutorial did not ask for"
    assert second.value == keys["key2"] and keys["key1"] == first_key1
    assert await _accepted(management_context, address, "key2", second.value or ""), "Azurite accepts the new key"
    assert await _accepted(management_context, address, "key1", first_key1), "the previous version's key still works"
    assert [o["status"] for o in outcomes(caplog)] == ["RotationEnqueued", "SecretRotated"]

    # A month on, the next rotation regenerates key1: the version readers hold (key2) keeps working.
    await time_shift(stack_environ, days=31)
    assert second.properties.version
    await _rotate(host, stack_environ, name, second.properties.version)
    third = await vault.get_secret(name)
    leak_check.append(third.value or "")
    assert third.properties.tags and third.properties.tags["CredentialId"] == "key1"
    assert third.value != first_key1
    assert await _accepted(management_context, address, "key1", third.value or "")
    assert await _accepted(management_context, address, "key2", second.value or "")
    assert not await _accepted(management_context, address, "key1", first_key1)


@pytest.mark.parametrize(
    ("address_of", "extra", "reason"),
    [
        (lambda env: env["MANAGEMENT_STORAGE_ACCOUNT_ID"].replace("rotation-local", "elsewhere"), {}, "outside"),
        (lambda env: env["MANAGEMENT_STORAGE_ACCOUNT_ID"] + "/blobServices/default", {}, "RotatorType"),
        (
            lambda env: env["MANAGEMENT_STORAGE_ACCOUNT_ID"],
            {"RotatorType": "azure-sql-admin"},
            "must be the resource ID of a Microsoft.Sql/servers",
        ),
        (
            lambda env: f"/tenants/{env['MANAGEMENT_TENANT_ID']}/applications/{'0' * 8}-0000-0000-0000-{'0' * 12}",
            {"RotatorType": "storage-account-key"},
            "is not an ARM resource ID",
        ),
    ],
    ids=["out-of-scope", "child-resource", "wrong-type", "not-arm"],
)
async def test_an_unusable_provider_address_is_refused_before_any_management_call(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    http: aiohttp.ClientSession,
    leak_check: list[str],
    caplog: pytest.LogCaptureFixture,
    address_of: object,
    extra: dict[str, str],
    reason: str,
) -> None:
    assert callable(address_of)
    name = unique("storage-refused")
    leak_check.append("not-a-key-value")
    secret = await vault.set_secret(
        name,
        "not-a-key-value",
        tags={
            "CredentialId": "key1",
            "ProviderAddress": address_of(stack_environ),
            "ValidityPeriodDays": "60",
            **extra,
        },
        expires_on=near_expiry(),
    )
    management_control = ManagementControl(http, stack_environ)
    await management_control.reset()
    caplog.clear()

    await _rotate(host, stack_environ, name, secret.properties.version or "")

    lines = [r.getMessage() for r in caplog.records if r.name == "secret_rotation"]
    assert len([line for line in lines if line.startswith("SecretRotationFailed")]) == 1, lines
    assert reason in next(line for line in lines if line.startswith("SecretRotationFailed"))
    assert await management_control.requests() == [], "the management double saw no request"
    assert len([v async for v in vault.list_properties_of_secret_versions(name)]) == 1


async def test_a_connection_string_secret_rotates_to_a_connection_string_that_clients_can_use(
    host: LocalFunctionsHost,
    stack_environ: dict[str, str],
    vault: SecretClient,
    management_context: ProviderContext,
    leak_check: list[str],
) -> None:
    from azure.storage.blob.aio import BlobServiceClient

    address = stack_environ["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    keys = await storage_keys(management_context, address)
    name = unique("storage-cs")
    first = await vault.set_secret(
        name,
        f"DefaultEndpointsProtocol=https;AccountName=rotationtarget;AccountKey={keys['key1']};",
        tags={
            "CredentialId": "key1",
            "ProviderAddress": address,
            "ValidityPeriodDays": "60",
            "ValueFormat": "connection-string",
        },
        expires_on=near_expiry(),
    )
    leak_check.extend([first.value or "", *keys.values()])

    await _rotate(host, stack_environ, name, first.properties.version or "")

    rotated = await vault.get_secret(name)
    value = rotated.value or ""
    leak_check.append(value)
    new_key = (await storage_keys(management_context, address))["key2"]
    assert f"AccountKey={new_key};" in value and "BlobEndpoint=" in value
    # What a reader does with the secret: a client straight from the connection string.
    async with BlobServiceClient.from_connection_string(value) as client:
        await client.get_service_properties()  # a Shared Key-signed request; raises if the key is refused
