"""The Key Vault adapter: the `SecretStore` port on `azure-keyvault-secrets`' async client.

One client per vault, all sharing the app's managed-identity credential. SDK retries are off (see
`retries`); SDK errors are translated here into the service's error types, with the operation and the
secret's name but never a value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from .errors import AccessDeniedError, ConfigurationError, RotationError, SecretDisabledError, TransientError
from .ports import SecretSummary, StoredSecret, VersionProperties
from .retries import RetryPolicy, is_transient
from .secret_value import SecretValue
from .settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.keyvault.secrets import KeyVaultSecret
    from azure.keyvault.secrets.aio import SecretClient

T = TypeVar("T")


def translate(exc: Exception, operation: str, name: str) -> RotationError:
    """Key Vault's answer as the service's error class, decided by status and Key Vault's error codes."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    where = f"Key Vault {operation} of secret {name}"
    if is_transient(exc):
        return TransientError(f"{where}: transient failure ({_describe(exc)})")
    if isinstance(exc, ClientAuthenticationError) and not isinstance(exc, HttpResponseError):
        return TransientError(f"{where}: could not get a token for the managed identity ({_describe(exc)})")
    status = getattr(exc, "status_code", None)
    codes = _codes(exc)
    if status == 403 and SECRET_DISABLED in codes:
        # A get of a disabled version (the versionless get when the newest version is disabled).
        return SecretDisabledError(
            f"{where}: the secret's newest version is disabled ({_describe(exc)}); see the runbook"
        )
    if status in (401, 403):
        return AccessDeniedError(f"{where}: access denied ({_describe(exc)})")
    if status == 409 and DELETED_BUT_RECOVERABLE in codes:
        return ConfigurationError(
            f"{where}: the name is deleted but recoverable (soft delete); recover or purge it first ({_describe(exc)})"
        )
    if status == 409:
        # Microsoft's guidance for Conflict: sequence the operations or retry; the queue retries later.
        return TransientError(f"{where}: conflict, will retry ({_describe(exc)})")
    if status == 413:
        return ConfigurationError(f"{where}: request too large ({_describe(exc)})")
    if isinstance(exc, HttpResponseError):
        return ConfigurationError(f"{where}: rejected ({_describe(exc)})")
    return TransientError(f"{where}: {_describe(exc)}")


SECRET_DISABLED = "SecretDisabled"  # noqa: S105 (an error code, not a password)
DELETED_BUT_RECOVERABLE = "ObjectIsDeletedButRecoverable"


def _codes(exc: Exception) -> set[str]:
    """Key Vault's error code and inner error code (`{"error": {"code", "innererror": {"code"}}}`)."""
    error = getattr(exc, "error", None)
    codes = {getattr(error, "code", None)}
    inner = getattr(error, "innererror", None)
    if isinstance(inner, dict):
        codes.add(inner.get("code"))
    return {code for code in codes if isinstance(code, str)}


def _describe(exc: Exception) -> str:
    status = getattr(exc, "status_code", None)
    codes = sorted(_codes(exc))
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or exc.__class__.__name__
    # Key Vault's RBAC denials span several lines (caller, action, resource): keep the outcome one line.
    message = " ".join(str(message).split())
    return " ".join(str(part) for part in (status, "/".join(codes), message) if part)


def _stored(secret: KeyVaultSecret) -> StoredSecret:
    props = secret.properties
    return StoredSecret(
        name=secret.name or "",
        version=props.version or "",
        value=SecretValue(secret.value or ""),
        tags=dict(props.tags or {}),
        enabled=bool(props.enabled),
        expires_on=props.expires_on,
        content_type=props.content_type,
    )


def _summary(item: Mapping[str, Any]) -> SecretSummary:
    """A SecretItem of the Get Secrets answer (`id` `{vault}/secrets/{name}`, `attributes` with `enabled` and
    the times `exp` and `updated` in seconds since 1970, `tags`) as the sweep reads it."""
    attributes = item.get("attributes") or {}
    expires, updated = attributes.get("exp"), attributes.get("updated")
    return SecretSummary(
        name=urlsplit(item.get("id") or "").path.partition("/secrets/")[2].split("/")[0],
        tags=item.get("tags") or {},
        enabled=bool(attributes.get("enabled")),
        expires_on=datetime.fromtimestamp(expires, UTC) if expires is not None else None,
        updated_on=datetime.fromtimestamp(updated, UTC) if updated is not None else None,
    )


class KeyVaultSecretStore:
    def __init__(self, client: SecretClient, retry: RetryPolicy) -> None:
        self._client = client
        self._retry = retry

    @property
    def vault_url(self) -> str:
        return self._client.vault_url

    async def _call(self, operation: str, name: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await self._retry.call(call)
        except Exception as exc:
            raise translate(exc, operation, name) from None

    async def get(self, name: str, version: str | None = None) -> StoredSecret | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            secret = await self._retry.call(lambda: self._client.get_secret(name, version))
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise translate(exc, "get", name) from None
        return _stored(secret)

    async def set(
        self,
        name: str,
        value: SecretValue,
        *,
        tags: Mapping[str, str],
        expires_on: datetime | None = None,
        content_type: str | None = None,
    ) -> StoredSecret:
        secret = await self._call(
            "set",
            name,
            lambda: self._client.set_secret(
                name, value.reveal(), tags=dict(tags), expires_on=expires_on, content_type=content_type
            ),
        )
        return _stored(secret)

    async def update(
        self, name: str, version: str, *, tags: Mapping[str, str] | None = None, enabled: bool | None = None
    ) -> None:
        # One PATCH: tags and enabled change together or not at all (closing a pending record relies on it).
        await self._call(
            "update",
            name,
            lambda: self._client.update_secret_properties(
                name, version, tags=dict(tags) if tags is not None else None, enabled=enabled
            ),
        )

    async def list_secrets(self) -> AsyncIterator[SecretSummary]:
        # Get Secrets (`GET {vault}/secrets`, pages of up to 25 joined by `nextLink`) through the client's own
        # pipeline (`send_request`: same auth, transport, throttle policy and api-version), reading each page's
        # JSON directly: `list_properties_of_secrets` builds two SDK models per secret and decodes each property
        # on access, which on a 10,000-secret sweep costs more than the listing's own requests
        # (docs/performance.md, sweep). Each page is retried like any other call.
        next_link: str | None = "/secrets"
        while next_link:
            page = await self._call("list", "*", partial(self._list_page, next_link))
            for item in page.get("value") or ():
                yield _summary(item)
            next_link = page.get("nextLink")

    async def _list_page(self, link: str) -> dict[str, Any]:
        from azure.core.rest import HttpRequest

        response = await self._client.send_request(HttpRequest("GET", link))
        response.raise_for_status()  # HttpResponseError with Key Vault's error body, as `translate` reads it
        page: dict[str, Any] = response.json()
        return page

    async def list_versions(self, name: str) -> list[VersionProperties]:
        # Key Vault answers 200 with an empty list for a missing secret: no 404 to handle.
        async def listing() -> list[VersionProperties]:
            return [
                VersionProperties(
                    version=props.version or "",
                    tags=dict(props.tags or {}),
                    enabled=bool(props.enabled),
                    created_on=props.created_on,
                    expires_on=props.expires_on,
                )
                async for props in self._client.list_properties_of_secret_versions(name)
            ]

        try:
            return await self._retry.call(listing)
        except Exception as exc:
            raise translate(exc, "list versions", name) from None


class KeyVaultStores:
    """`SecretStores` for the vaults this app may use, one async client each. `client_options(vault_url)`
    adds SDK client options (the shared transport, the per-vault throttle policy: see `composition`)."""

    def __init__(
        self,
        settings: Settings,
        credential: AsyncTokenCredential,
        retry: RetryPolicy,
        *,
        client_options: Callable[[str], Mapping[str, Any]] | None = None,
    ) -> None:
        self._client_options = client_options
        self._settings = settings
        self._credential = credential
        self._retry = retry
        self._stores: dict[str, KeyVaultSecretStore] = {}
        self._clients: list[SecretClient] = []

    def for_vault(self, vault_url: str) -> KeyVaultSecretStore:
        key = vault_url.rstrip("/").lower()
        if key not in self._stores:
            from azure.keyvault.secrets.aio import SecretClient

            # A CA path per client costs a new TLS connection per request; a shared transport trusts it once.
            options = self._client_options(vault_url) if self._client_options else {}
            client = SecretClient(
                vault_url,
                self._credential,
                api_version=self._settings.keyvault_api_version,
                verify_challenge_resource=self._settings.verify_challenge_resource,
                retry_total=0,
                **({**options} if options else {"connection_verify": self._settings.keyvault_ca_bundle or True}),
            )
            self._clients.append(client)
            self._stores[key] = KeyVaultSecretStore(client, self._retry)
        return self._stores[key]

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        self._clients.clear()
        self._stores.clear()
