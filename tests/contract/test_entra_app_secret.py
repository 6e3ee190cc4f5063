"""The entra-app-secret rotator against the management double's Graph and token authority: passwords
chosen by Graph, proven with azure-identity's ClientSecretCredential, the one from two rotations ago
removed only after the new one worked."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rotators.entra_app_secret import EntraAppSecretRotator
from secret_rotation.errors import ConfigurationError
from secret_rotation.rotator import ApplyRequest, Credential
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig
from tests.support.management import ManagementControl, provider_context

pytestmark = pytest.mark.integration


@pytest.fixture
async def rotator(stack_environ: dict[str, str]) -> AsyncIterator[EntraAppSecretRotator]:
    async with provider_context(stack_environ) as context:
        yield EntraAppSecretRotator(context)


async def test_adds_a_working_secret_keeps_the_current_one_and_removes_the_one_from_two_rotations_ago(
    rotator: EntraAppSecretRotator, stack_environ: dict[str, str], http: aiohttp.ClientSession, leak_check: list[str]
) -> None:
    control = ManagementControl(http, stack_environ)
    object_id = str(uuid.uuid4())
    key0, secret0 = await control.create_application(object_id, str(uuid.uuid4()))
    leak_check.append(secret0)
    address = f"/tenants/{stack_environ['MANAGEMENT_TENANT_ID']}/applications/{object_id}"
    config = RotationConfig("entra-app-secret", key0, address, 60)
    rotator.validate(config)
    first = Credential(key0, SecretValue(secret0))
    assert await rotator.accepts(config, first)
    assert not await rotator.accepts(config, Credential(key0, SecretValue("not-the-secret")))

    one = await rotator.apply(ApplyRequest(config, Credential("x", SecretValue("placeholder")), first))
    leak_check.append(one.secret.reveal())
    assert one.credential_id != key0 and await rotator.accepts(config, one) and await rotator.accepts(config, first)
    assert rotator.next_tags(config) == {"AlternateCredentialId": key0}

    second_config = RotationConfig("entra-app-secret", one.credential_id, address, 60, alternate_credential_id=key0)
    two = await rotator.apply(ApplyRequest(second_config, Credential("x", SecretValue("placeholder")), one))
    leak_check.append(two.secret.reveal())
    assert await rotator.accepts(second_config, two) and await rotator.accepts(second_config, one)
    assert not await rotator.accepts(second_config, first), "the secret from two rotations ago is removed"
    described = await control.application(object_id)
    assert sorted(described["keyIds"]) == sorted([one.credential_id, two.credential_id])
    assert described["maxPasswords"] == 3, "three only between addPassword and the verified removal"


def test_the_previous_password_is_never_the_current_one(rotator: EntraAppSecretRotator) -> None:
    key, address = str(uuid.uuid4()), f"/tenants/{uuid.uuid4()}/applications/{uuid.uuid4()}"
    with pytest.raises(ConfigurationError, match="must differ"):
        rotator.validate(RotationConfig("entra-app-secret", key, address, 60, alternate_credential_id=key))


@pytest.mark.parametrize(
    ("address", "credential_id"),
    [
        ("/subscriptions/x/resourceGroups/g/providers/Microsoft.Storage/storageAccounts/a", str(uuid.uuid4())),
        ("/tenants/not-a-guid/applications/" + str(uuid.uuid4()), str(uuid.uuid4())),
        (f"/tenants/{uuid.uuid4()}/servicePrincipals/{uuid.uuid4()}", str(uuid.uuid4())),
        (f"/tenants/{uuid.uuid4()}/applications/{uuid.uuid4()}", "key1"),
    ],
)
def test_refuses_what_is_not_an_application_and_a_keyid(
    rotator: EntraAppSecretRotator, address: str, credential_id: str
) -> None:
    with pytest.raises(ConfigurationError):
        rotator.validate(RotationConfig("entra-app-secret", credential_id, address, 60))
