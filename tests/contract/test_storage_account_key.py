"""The storage-account-key rotator against the management double and the account's own Azurite.

A regenerated key must be the one Azurite accepts (real Shared Key requests), the key the current
version holds must keep working, and nothing may reach ARM for an address the rotator cannot use.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from rotators.storage_account_key import StorageAccountKeyRotator
from secret_rotation.errors import ConfigurationError, ProviderRefusedError, UnknownRotatorError
from secret_rotation.rotator import ApplyRequest, Credential
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.management import ManagementControl, provider_context, storage_keys

pytestmark = pytest.mark.integration


@pytest.fixture
async def rotator(stack_environ: dict[str, str]) -> AsyncIterator[StorageAccountKeyRotator]:
    async with provider_context(stack_environ) as context:
        yield StorageAccountKeyRotator(context)


@pytest.fixture
async def control(http: aiohttp.ClientSession, stack_env: dict[str, str]) -> ManagementControl:
    control = ManagementControl(http, stack_env)
    await control.reset()
    return control


def _config(address: str, credential_id: str = "key1", alternate: str | None = None) -> RotationConfig:
    return RotationConfig("storage-account-key", credential_id, address, 60, alternate_credential_id=alternate)


async def test_regenerates_the_other_key_which_azurite_then_accepts_and_the_current_key_keeps_working(
    rotator: StorageAccountKeyRotator, stack_env: dict[str, str], control: ManagementControl
) -> None:
    address = stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    before = await storage_keys(rotator.context, address)
    config = _config(address, "key1")
    rotator.validate(config)
    assert rotator.target_credential_id(config) == "key2"
    assert rotator.next_tags(config) == {"CredentialId": "key2"}
    current = Credential("key1", SecretValue(before["key1"]))
    placeholder = Credential("key2", rotator.generate(config, "key2"))
    assert not await rotator.accepts(config, placeholder)

    issued = await rotator.apply(ApplyRequest(config, placeholder, current))

    after = await storage_keys(rotator.context, address)
    assert issued.credential_id == "key2" and issued.secret.reveal() == after["key2"] != before["key2"]
    assert after["key1"] == before["key1"], "the key the current version holds is never regenerated"
    assert await rotator.accepts(config, issued), "Azurite accepts the regenerated key"
    assert await rotator.accepts(config, current), "and still the current one"
    assert not await rotator.accepts(config, Credential("key2", SecretValue(before["key2"])))
    posts = [r["path"].rsplit("/", 1)[-1] for r in await control.requests() if r["method"] == "POST"]
    assert posts.count("regenerateKey") == 1 and posts.count("listKeys") >= 1


async def test_refuses_to_regenerate_the_key_the_current_version_holds(
    rotator: StorageAccountKeyRotator, stack_env: dict[str, str], control: ManagementControl
) -> None:
    config = _config(stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"], "key2")
    same = Credential("key2", SecretValue("x"))
    with pytest.raises(ProviderRefusedError):
        await rotator.apply(ApplyRequest(config, same, same))
    assert await control.requests() == []


@pytest.mark.parametrize(
    "address",
    [
        "https://rotationtarget.blob.core.windows.net",
        "/subscriptions/x/resourceGroups/g/providers/Microsoft.Sql/servers/s",
        "/subscriptions/x/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a/blobServices/default",
        "subscriptions/x/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a",
    ],
)
def test_provider_address_must_be_a_storage_account_resource_id(
    rotator: StorageAccountKeyRotator, address: str
) -> None:
    with pytest.raises(ConfigurationError):
        rotator.validate(_config(address))


@pytest.mark.parametrize(("credential_id", "alternate"), [("key3", None), ("key1", "key1"), ("kerb1", "kerb2")])
def test_credential_ids_are_the_two_account_keys(
    rotator: StorageAccountKeyRotator, stack_env: dict[str, str], credential_id: str, alternate: str | None
) -> None:
    with pytest.raises(ConfigurationError):
        rotator.validate(_config(stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"], credential_id, alternate))


def test_the_tutorial_tags_infer_this_rotator_and_an_explicit_alternate_is_swapped(stack_env: dict[str, str]) -> None:
    address = stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    # Microsoft's dual-credential tutorial tags the secret with these three and nothing else.
    tutorial = {"CredentialId": "key1", "ProviderAddress": address, "ValidityPeriodDays": "60"}
    config = RotationConfig.from_tags("storage-key", tutorial)
    assert config.rotator_type == "storage-account-key"
    explicit = _config(address, "key2", "key1")
    assert StorageAccountKeyRotator().next_tags(explicit) == {"CredentialId": "key1", "AlternateCredentialId": "key2"}
    with pytest.raises(UnknownRotatorError):
        RotationConfig.from_tags("x", {**tutorial, "ProviderAddress": address + "/blobServices/default"})


def test_value_formats_the_key_alone_or_a_connection_string(stack_env: dict[str, str]) -> None:
    rotator = StorageAccountKeyRotator()
    address = stack_env["MANAGEMENT_STORAGE_ACCOUNT_ID"]
    key = SecretValue("a2V5" * 22)
    assert rotator.parse("key1", key).secret.reveal() == key.reveal()
    string = SecretValue(f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={key.reveal()};EndpointSuffix=x")
    assert rotator.parse("key1", string).secret.reveal() == key.reveal()
    rotator.validate(RotationConfig("storage-account-key", "key1", address, 60, value_format="connection-string"))
    with pytest.raises(ConfigurationError, match="ValueFormat"):
        rotator.validate(RotationConfig("storage-account-key", "key1", address, 60, value_format="sas"))
