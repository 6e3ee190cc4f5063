"""The management API of the local Key Vault double (tests/doubles/keyvault_management.py), for tests.

Every call names one vault (its URL), so settings made for one test's vault never leak into another's.
"""

from __future__ import annotations

from typing import Any

import aiohttp


class KeyVaultDouble:
    """Management calls for one vault of the double."""

    def __init__(self, http: aiohttp.ClientSession, management_url: str, vault_url: str) -> None:
        self.http, self.management, self.vault = http, management_url, vault_url
        self._token = ""

    async def call(self, method: str, path: str, body: Any = None, expect: int = 200) -> Any:
        url = f"{self.management}/{path}"
        async with self.http.request(method, url, params={"vault": self.vault}, json=body) as response:
            assert response.status == expect, await response.text()
            return await response.json()

    async def token(self, identity_endpoint: str, identity_header: str) -> None:
        """A managed-identity token for raw data-plane requests (`data_plane`), from the stack's endpoint."""
        params = {"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
        headers = {"X-IDENTITY-HEADER": identity_header}
        async with self.http.get(identity_endpoint, params=params, headers=headers) as response:
            assert response.status == 200, await response.text()
            self._token = str((await response.json())["access_token"])

    async def data_plane(
        self, method: str, path: str, body: Any = None, api_version: str = "7.6"
    ) -> tuple[int, Any, dict[str, str]]:
        """A raw Key Vault request (status, JSON body or None, headers), for what the SDK does not expose.

        `path` is relative to the vault (api-version added), or a full URL such as a nextLink (used as is)."""
        full = path.startswith("https://")
        url = path if full else f"{self.vault}{path}"
        headers = {"Authorization": f"Bearer {self._token}"}
        params = {} if full else {"api-version": api_version}
        async with self.http.request(method, url, params=params, json=body, headers=headers) as response:
            payload = await response.json() if response.content_length else None
            return response.status, payload, dict(response.headers)

    async def deny(self, *rules: dict[str, Any]) -> Any:
        """Per-secret RBAC: each rule is {"secret": NAME, "deny": [operation or alias, ...]}."""
        return await self.call("PUT", "rbac", {"rules": list(rules)})

    async def deny_by_policy(self, *, content_type: bool = False, expiry: bool = False) -> Any:
        """Azure Policy "Deny": new versions need a content type and/or an expiry."""
        return await self.call("PUT", "policy", {"require_content_type": content_type, "require_expiry": expiry})

    async def purge_protection(self, enabled: bool) -> Any:
        """Purge protection on (deleted secrets cannot be purged) or off (the default)."""
        return await self.call("PUT", "purge-protection", {"enabled": enabled})

    async def counts(self) -> dict[str, Any]:
        """Request counts of this vault: per operation, unauthorized, forbidden, total, apiVersions."""
        counts: dict[str, Any] = await self.call("GET", "requests")
        return counts

    async def reset_counts(self) -> None:
        await self.call("POST", "requests/reset")

    async def reset(self) -> None:
        """Back to a plain vault: no RBAC denials, no policy, no purge protection."""
        await self.call("DELETE", "rbac")
        await self.call("DELETE", "policy")
        await self.purge_protection(False)
