"""Key Vault's limits on a secret's metadata in the double: 15 tags of at most 512 characters, contentType
at most 255 characters, and a refused write changes nothing.

Source: Microsoft Learn, "About Azure Key Vault secrets" (MicrosoftDocs/azure-security-docs
articles/key-vault/secrets/about-secrets.md): "Key Vault supports up to 15 tags, each of which can have
a 512 character name and a 512 character value"; contentType: "The maximum length of this field is 255
characters." Key Vault refuses a bad request body with 400 `BadParameter` (its error code for invalid
parameters, e.g. the api-version check in tests/integration/test_local_stack.py).
"""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import HttpResponseError
from azure.keyvault.secrets.aio import SecretClient

from tests.support.stack import unique

pytestmark = pytest.mark.integration


async def _refused(call: object) -> None:
    with pytest.raises(HttpResponseError) as info:
        await call  # type: ignore[misc]
    assert info.value.status_code == 400
    assert info.value.error is not None and info.value.error.code == "BadParameter"


async def test_tag_and_content_type_limits(vault: SecretClient):
    name = unique("limits")
    fifteen = {f"t{i}": "v" * 512 for i in range(14)} | {"n" * 512: "v"}
    stored = await vault.set_secret(name, uuid.uuid4().hex, tags=fifteen, content_type="c" * 255)
    assert stored.properties.tags == fifteen

    await _refused(vault.set_secret(name, uuid.uuid4().hex, tags={**fifteen, "sixteenth": "x"}))
    await _refused(vault.set_secret(name, uuid.uuid4().hex, tags={"n" * 513: "v"}))
    await _refused(vault.set_secret(name, uuid.uuid4().hex, tags={"n": "v" * 513}))
    await _refused(vault.set_secret(name, uuid.uuid4().hex, content_type="c" * 256))
    # An update that breaks one limit changes nothing, not even the valid parts of the same request.
    await _refused(vault.update_secret_properties(name, content_type="ok", tags={**fifteen, "sixteenth": "x"}))
    props = (await vault.get_secret(name)).properties
    assert (props.version, props.content_type, props.tags) == (stored.properties.version, "c" * 255, fifteen)
