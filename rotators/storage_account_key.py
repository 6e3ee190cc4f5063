"""Dual credential: a storage account's two access keys alternate (Microsoft's dual-credential tutorial).

Tags: `CredentialId` = the key the current version holds (`key1` or `key2`), `ProviderAddress` = the
storage account's ARM resource ID. `AlternateCredentialId` is optional: the other key is implied.
Secret value: the key alone, as in Microsoft's tutorial; with `ValueFormat=connection-string`, a full
connection string (`DefaultEndpointsProtocol=https;AccountName=…;AccountKey=…;` plus the account's own
service endpoints, so it works in every cloud).
The rotator regenerates the key the current version does NOT hold (`regenerateKey`, then `listKeys` for
its value: Azure chooses it, so this rotator `issues_credentials`), and verifies it with a real Shared Key
request to the account's blob endpoint (from the account's properties). The key the current version
holds keeps working until the next rotation regenerates it.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

from secret_rotation.errors import ConfigurationError, ProviderRefusedError, TransientError
from secret_rotation.rotator import ApplyRequest, Credential, DualCredentialRotator, Rotator
from secret_rotation.secret_value import SecretValue
from secret_rotation.tags import RotationConfig, Tag

from .azure_management import ResourceAddress, arm_client, call, parse_resource

if TYPE_CHECKING:
    from azure.mgmt.storage.aio import StorageManagementClient

RESOURCE_TYPE = "Microsoft.Storage/storageAccounts"
OTHER_KEY = {"key1": "key2", "key2": "key1"}
VALUE_FORMATS = (None, "key", "connection-string")


class StorageAccountKeyRotator(DualCredentialRotator):
    name = "storage-account-key"
    issues_credentials = True

    def scope(self, config: RotationConfig) -> str:
        return parse_resource(config.provider_address, RESOURCE_TYPE).scope

    def validate(self, config: RotationConfig) -> None:
        Rotator.validate(self, config)  # the alternate key is implied, not a required tag
        if config.credential_id not in OTHER_KEY:
            raise ConfigurationError(f"{Tag.CREDENTIAL_ID} must be key1 or key2, got {config.credential_id!r}")
        alternate = config.alternate_credential_id
        if alternate is not None and alternate != OTHER_KEY[config.credential_id]:
            raise ConfigurationError(f"{Tag.ALTERNATE_CREDENTIAL_ID} must be {OTHER_KEY[config.credential_id]}")
        if config.value_format not in VALUE_FORMATS:
            raise ConfigurationError(
                f"{Tag.VALUE_FORMAT} must be key or connection-string, got {config.value_format!r}"
            )

    def parse(self, credential_id: str, value: SecretValue) -> Credential:
        # Either format holds one key; a connection string is recognised by its AccountKey part.
        parts = dict(p.split("=", 1) for p in value.reveal().split(";") if "=" in p)
        return Credential(credential_id, SecretValue(parts["AccountKey"]) if "AccountKey" in parts else value)

    def target_credential_id(self, config: RotationConfig) -> str:
        return OTHER_KEY[config.credential_id]

    def next_tags(self, config: RotationConfig) -> dict[str, str]:
        tags = {Tag.CREDENTIAL_ID.value: OTHER_KEY[config.credential_id]}
        if config.alternate_credential_id is not None:
            tags[Tag.ALTERNATE_CREDENTIAL_ID.value] = config.credential_id
        return tags

    def _client(self, address: ResourceAddress) -> StorageManagementClient:
        from azure.mgmt.storage.aio import StorageManagementClient

        return arm_client(StorageManagementClient, self.context, address.subscription)

    async def apply(self, request: ApplyRequest) -> Credential:
        target = request.new.credential_id
        if target == request.current.credential_id or target not in OTHER_KEY:
            # Never the key readers of the current version hold, whatever asked for it.
            raise ProviderRefusedError(f"refusing to regenerate {target}: the current version holds it")
        from azure.mgmt.storage.models import StorageAccountRegenerateKeyParameters

        address = parse_resource(request.config.provider_address, RESOURCE_TYPE)
        what = f"storage account {address.name}"
        async with self._client(address) as client:
            parameters = StorageAccountRegenerateKeyParameters(key_name=target)
            await call(
                f"{what}: regenerate {target}",
                client.storage_accounts.regenerate_key(address.resource_group, address.name, parameters),
            )
            listing = await call(
                f"{what}: list keys", client.storage_accounts.list_keys(address.resource_group, address.name)
            )
            values = [k.value for k in listing.keys_property or [] if k.key_name == target and k.value]
            if not values:
                raise ProviderRefusedError(f"{what}: listKeys returned no {target}")
            if request.config.value_format != "connection-string":
                return Credential(target, SecretValue(values[0]))
            account = await call(
                f"{what}: properties", client.storage_accounts.get_properties(address.resource_group, address.name)
            )
        return Credential(target, SecretValue(_connection_string(address.name, values[0], account)))

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
        from azure.storage.blob.aio import BlobServiceClient

        if not _is_account_key(credential.secret):
            return False
        address = parse_resource(config.provider_address, RESOURCE_TYPE)
        endpoint = await self._blob_endpoint(address)
        key: Any = {"account_name": address.name, "account_key": credential.secret.reveal()}
        client = BlobServiceClient(endpoint, credential=key, retry_total=1, transport=self.context.transport())
        try:
            async with client:
                # One Shared Key-signed request: the first page of containers.
                async for _ in client.list_containers(results_per_page=1).by_page():
                    break
        except (ClientAuthenticationError, HttpResponseError) as exc:
            if exc.status_code == 403:
                return False
            raise TransientError(f"storage account {address.name}: blob endpoint answered {exc.status_code}") from None
        except AzureError as exc:
            raise TransientError(
                f"storage account {address.name}: blob endpoint unreachable ({exc.__class__.__name__})"
            ) from None
        return True

    async def _blob_endpoint(self, address: ResourceAddress) -> str:
        async with self._client(address) as client:
            account = await call(
                f"storage account {address.name}: properties",
                client.storage_accounts.get_properties(address.resource_group, address.name),
            )
        blob = account.primary_endpoints.blob if account.primary_endpoints else None
        if not blob:
            raise ProviderRefusedError(f"storage account {address.name} has no blob endpoint")
        return str(blob)


def _connection_string(name: str, key: str, account: Any) -> str:
    endpoints = account.primary_endpoints
    parts = [f"DefaultEndpointsProtocol=https;AccountName={name};AccountKey={key}"]
    for service in ("blob", "queue", "table", "file"):
        url = getattr(endpoints, service, None) if endpoints else None
        if url:
            parts.append(f"{service.capitalize()}Endpoint={url}")
    return ";".join(parts) + ";"


def _is_account_key(secret: SecretValue) -> bool:
    try:
        return len(base64.b64decode(secret.reveal(), validate=True)) == 64
    except (binascii.Error, ValueError):
        return False
