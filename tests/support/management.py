"""Helpers for tests of the management-plane rotators: their ProviderContext on the local stack, the
management double's control API, and the target storage account's keys as ARM reports them."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from secret_rotation.rotator import ProviderContext
from secret_rotation.transport import SharedHttp
from tests.support.hygiene import HYGIENE


@contextlib.asynccontextmanager
async def provider_context(env: dict[str, str], arm_endpoint: str | None = None) -> AsyncIterator[ProviderContext]:
    """What composition gives rotators on the local stack: the managed identity, the doubles' URLs and
    one shared connection pool."""
    from azure.identity.aio import ManagedIdentityCredential

    http = SharedHttp(env["KEYVAULT_CA_BUNDLE"])
    credential = ManagedIdentityCredential(client_id=env["AZURE_CLIENT_ID"], transport=http.transport())
    try:
        async with credential:
            yield ProviderContext(
                credential=credential,
                arm_endpoint=arm_endpoint or env["ROTATION_ARM_ENDPOINT"],
                ca_bundle=env["KEYVAULT_CA_BUNDLE"],
                database_port=int(env["ROTATION_DATABASE_PORT"]),
                graph_endpoint=env["ROTATION_GRAPH_ENDPOINT"],
                authority_host=env["ROTATION_AUTHORITY_HOST"],
                sql_login_check=env["ROTATION_SQL_LOGIN_CHECK"],
                http=http,
            )
    finally:
        await http.close()


class ManagementControl:
    """The management double's test-only control API."""

    def __init__(self, http: aiohttp.ClientSession, env: dict[str, str]) -> None:
        self.http, self.base = http, env["MANAGEMENT_CONTROL"]

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, self.base + path, json=body) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def requests(self) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = await self._json("GET", "/requests")
        return seen

    async def reset(self) -> None:
        await self._json("POST", "/requests/reset")

    async def create_server(self, kind: str, name: str, administrator_login: str, password: str | None = None) -> None:
        """A PostgreSQL flexible server (`flexibleServers`, backed by the stack's PostgreSQL) or an Azure
        SQL server (`sqlServers`, with its first password) in the double's resource group."""
        body = {"administratorLogin": administrator_login, "administratorLoginPassword": password}
        await self._json("PUT", f"/servers/{kind}/{name}", body)

    async def password_updates(self, kind: str, name: str) -> int:
        return int((await self._json("GET", f"/servers/{kind}/{name}"))["passwordUpdates"])

    async def create_application(self, object_id: str, app_id: str) -> tuple[str, str]:
        """An Entra application with one password made by hand: (keyId, secret text)."""
        made = await self._json("PUT", f"/applications/{object_id}", {"appId": app_id})
        HYGIENE.track(made["secretText"])
        return str(made["keyId"]), str(made["secretText"])

    async def application(self, object_id: str) -> dict[str, Any]:
        """{"keyIds": the application's password keyIds now, "maxPasswords": the most it ever held}."""
        described: dict[str, Any] = await self._json("GET", f"/applications/{object_id}")
        return described

    async def regenerations(self) -> int:
        return int((await self._json("GET", "/storage/regenerations"))["regenerations"])


def server_id(env: dict[str, str], kind: str, name: str) -> str:
    provider = {"flexibleServers": "Microsoft.DBforPostgreSQL/flexibleServers", "sqlServers": "Microsoft.Sql/servers"}
    return f"{env['MANAGEMENT_RESOURCE_GROUP']}/providers/{provider[kind]}/{name}"


async def storage_keys(context: ProviderContext, resource_id: str) -> dict[str, str]:
    """{"key1": value, "key2": value} of the target account, read through ARM like any client would."""
    from azure.mgmt.storage.aio import StorageManagementClient

    from rotators.azure_management import arm_client, parse_resource

    address = parse_resource(resource_id, "Microsoft.Storage/storageAccounts")
    async with arm_client(StorageManagementClient, context, address.subscription) as client:
        listing = await client.storage_accounts.list_keys(address.resource_group, address.name)
    keys = {k.key_name or "": k.value or "" for k in listing.keys_property or []}
    for value in keys.values():
        HYGIENE.track(value)
    return keys
