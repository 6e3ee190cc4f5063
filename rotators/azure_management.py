"""Shared by the rotators that call Azure Resource Manager: resource IDs, clients, errors, LROs.

`ProviderAddress` of such a rotator is an ARM resource ID, parsed with `azure.mgmt.core.tools` (never
split by hand) and checked to be of the type the rotator expects; its canonical form is the rotator's
scope, which the engine checks against ROTATION_ALLOWED_SCOPES before any management call. Clients are
built from the `ProviderContext` through the SDKs' documented options only: `base_url` (the ARM
endpoint), `credential_scopes`, `transport` (the shared connection pool, which holds the TLS trust:
`ProviderContext.transport`). Long-running operations are
polled to completion by the SDK's own poller (`Azure-AsyncOperation` / `Location`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from secret_rotation.errors import (
    AccessDeniedError,
    ConfigurationError,
    ProviderRefusedError,
    RotationError,
    TransientError,
)
from secret_rotation.retries import is_transient

if TYPE_CHECKING:
    from azure.core.polling import AsyncLROPoller

    from secret_rotation.rotator import ProviderContext

T = TypeVar("T")
C = TypeVar("C")
# The audience of ARM tokens in Azure's public cloud (the SDKs' default scope).
ARM_SCOPE = "https://management.azure.com/.default"
# A few SDK-level retries for a dropped connection; throttling beyond that goes back to the queue.
SDK_RETRY_TOTAL = 3


@dataclass(frozen=True)
class ResourceAddress:
    resource_id: str
    subscription: str
    resource_group: str
    name: str

    @property
    def scope(self) -> str:
        return self.resource_id


def parse_resource(address: str, resource_type: str) -> ResourceAddress:
    """`address` as an ARM resource ID of `resource_type` ("Microsoft.Storage/storageAccounts")."""
    from azure.mgmt.core.tools import is_valid_resource_id, parse_resource_id, resource_id

    if not is_valid_resource_id(address):
        raise ConfigurationError(f"ProviderAddress {address!r} is not an ARM resource ID of a {resource_type}")
    parts = parse_resource_id(address)
    namespace, kind = resource_type.split("/", 1)
    found = f"{parts.get('namespace', '')}/{parts.get('type', '')}"
    # A child resource (…/storageAccounts/x/blobServices/default) is not the account itself.
    if found.lower() != resource_type.lower() or "child_type_1" in parts or not parts.get("resource_group"):
        raise ConfigurationError(f"ProviderAddress must be the resource ID of a {resource_type}, not {found}")
    subscription, group, name = str(parts["subscription"]), str(parts["resource_group"]), str(parts["name"])
    canonical = resource_id(subscription=subscription, resource_group=group, namespace=namespace, type=kind, name=name)
    return ResourceAddress(canonical, subscription, group, name)


def arm_client(factory: Callable[..., C], context: ProviderContext, subscription: str) -> C:
    """An azure-mgmt client (its class as `factory`) with the documented options only: where ARM is,
    the token audience, the transport (the shared pool: a client per call costs no new connection)."""
    if context.credential is None:
        raise ConfigurationError("management-plane rotators need the managed identity (ProviderContext.credential)")
    return factory(
        context.credential,
        subscription,
        base_url=context.arm_endpoint,
        credential_scopes=[ARM_SCOPE],
        transport=context.transport(),
        retry_total=SDK_RETRY_TOTAL,
    )


def translate(exc: Exception, what: str) -> RotationError:
    """An azure-core error of a management call as the service's error (no secret is in either)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    status = getattr(exc, "status_code", None)
    error = getattr(exc, "error", None)
    detail = " ".join(str(p) for p in (status, getattr(error, "code", None)) if p) or exc.__class__.__name__
    if is_transient(exc):
        return TransientError(f"{what}: transient failure ({detail})")
    if isinstance(exc, ClientAuthenticationError) and not isinstance(exc, HttpResponseError):
        return TransientError(f"{what}: could not get a token for the managed identity ({detail})")
    if status in (401, 403):
        return AccessDeniedError(f"{what}: access denied ({detail})")
    if isinstance(exc, HttpResponseError):
        return ProviderRefusedError(f"{what}: refused ({detail})")
    return TransientError(f"{what}: {detail}")


async def call(what: str, operation: Awaitable[T]) -> T:
    """Await one management call, translating its failure."""
    from azure.core.exceptions import AzureError

    try:
        return await operation
    except AzureError as exc:
        raise translate(exc, what) from None


async def complete(what: str, begin: Awaitable[AsyncLROPoller[T]]) -> T:
    """Start a long-running operation and poll it to completion with the SDK's poller."""
    poller = await call(what, begin)
    return await call(what, poller.result())
