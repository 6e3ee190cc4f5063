"""The rotator contract and its two templates, single and dual credential.

A rotator is the provider side only: it knows how to make, apply and test a credential, and nothing of
Key Vault, events or the protocol order (that is `engine`). A plugin subclasses one template and
implements three hooks:

Required
    `scope(config) -> str`        canonical provider scope, checked against ROTATION_ALLOWED_SCOPES;
                                  raise ConfigurationError for an unusable ProviderAddress.
    `apply(request) -> Credential | None`
                                  make the provider accept `request.new` (idempotent: the engine first
                                  asks `accepts`, but a retried apply must also be harmless) and return
                                  None. A rotator whose provider issues the credential itself (a
                                  regenerated storage key, a Graph password) sets `issues_credentials`
                                  and returns the issued credential instead; see below.
    `accepts(config, credential) -> bool`
                                  a real login; False when the provider rejects the credential,
                                  TransientError when it cannot tell (unreachable, throttled).
Optional
    `__init__(context)`                                 keep the base signature; `self.context` is the
                                                       `ProviderContext` (identity, cloud endpoints).
    `generate(config, credential_id) -> SecretValue`   default: 32 random bytes, URL-safe.
    `render(credential) / parse(credential_id, value)` the secret value's format; default: the bare
                                                       password or key (Microsoft's samples' format).
    `validate(config)`                                 extra tag checks; call super().

Provider-issued credentials (`issues_credentials = True`): some providers choose the new value
(`regenerateKey`, Graph `addPassword`), so the pending record cannot hold it before `apply`. The engine
then writes the pending record with `generate`'s value as a placeholder the provider never sees, calls
`apply` without asking `accepts` first, and stores the credential `apply` returns in the pending record
(step `applied`, one write) before verifying it. A crash between the provider's answer and that write
makes the redelivery call `apply` again: such a rotator must leave nothing behind that only the lost
answer knew about (a storage key is simply regenerated again; see docs/protocol.md).
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from .errors import ConfigurationError
from .secret_value import SecretValue
from .tags import RotationConfig, Tag

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.pipeline.transport import AioHttpTransport

    from .transport import SharedHttp


class Pattern(Enum):
    SINGLE = "single"
    DUAL = "dual"


@dataclass(frozen=True)
class Credential:
    credential_id: str
    secret: SecretValue = field(repr=False)


@dataclass(frozen=True)
class ApplyRequest:
    config: RotationConfig
    new: Credential
    current: Credential
    admin: Credential | None = None


@dataclass(frozen=True)
class ProviderContext:
    """What a rotator may use besides its tags: the app's managed identity (for management APIs such as
    ARM or Microsoft Graph) and where those planes are. Defaults are Azure's public cloud; the local stack
    points them at its doubles. Never Key Vault: rotators know nothing of it.

    HTTP: every azure-core client a rotator builds (azure-mgmt, azure-identity, azure-storage, a pipeline
    client) takes `transport=context.transport()`, and nothing else about TLS. Where the service runs,
    `http` is the process's one connection pool (`transport.SharedHttp`, from `composition`), so a
    rotation reuses the pooled connections of the last one, and closing a client leaves the pool open."""

    credential: AsyncTokenCredential | None = None
    arm_endpoint: str = "https://management.azure.com"
    graph_endpoint: str = "https://graph.microsoft.com"
    authority_host: str = "https://login.microsoftonline.com"
    ca_bundle: str | None = None  # local stack only: the CA that signs the doubles' certificates
    # Local stack only: the port a database login check uses instead of the service's standard one
    # (the stack's PostgreSQL stands in for every flexible server), where TLS is then optional.
    database_port: int | None = None
    # Local stack only: no SQL Server runs here, so Azure SQL login checks go to this endpoint of the
    # management double (its record of the password) instead of a TDS login.
    sql_login_check: str | None = None
    # The shared connection pool; None (a rotator built alone) gives each client its own transport.
    http: SharedHttp | None = None

    def transport(self) -> AioHttpTransport:
        """The transport for one azure-core client: over the shared pool when there is one, else a
        transport of the client's own (closed with it) that trusts `ca_bundle` or the system store."""
        if self.http is not None:
            return self.http.transport()
        from azure.core.pipeline.transport import AioHttpTransport

        return AioHttpTransport(connection_verify=self.ca_bundle or True)


class Rotator(ABC):
    name: ClassVar[str]
    pattern: ClassVar[Pattern]
    issues_credentials: ClassVar[bool] = False

    def __init__(self, context: ProviderContext | None = None) -> None:
        self.context = context or ProviderContext()

    @abstractmethod
    def scope(self, config: RotationConfig) -> str: ...

    @abstractmethod
    async def apply(self, request: ApplyRequest) -> Credential | None: ...

    @abstractmethod
    async def accepts(self, config: RotationConfig, credential: Credential) -> bool: ...

    def generate(self, config: RotationConfig, credential_id: str) -> SecretValue:
        return SecretValue(secrets.token_urlsafe(32))

    def render(self, credential: Credential) -> SecretValue:
        return credential.secret

    def parse(self, credential_id: str, value: SecretValue) -> Credential:
        return Credential(credential_id, value)

    def validate(self, config: RotationConfig) -> None:
        self.scope(config)

    @abstractmethod
    def target_credential_id(self, config: RotationConfig) -> str:
        """Which credential this rotation replaces (the template decides)."""

    @abstractmethod
    def next_tags(self, config: RotationConfig) -> dict[str, str]:
        """Tags that change on the promoted version (the template decides)."""


class SingleCredentialRotator(Rotator):
    """One credential changed in place; `apply` gets the current credential to authenticate with."""

    pattern = Pattern.SINGLE

    def target_credential_id(self, config: RotationConfig) -> str:
        return config.credential_id

    def next_tags(self, config: RotationConfig) -> dict[str, str]:
        return {}


class DualCredentialRotator(Rotator):
    """Two credentials alternate: the inactive one (`AlternateCredentialId`) is regenerated, so readers
    of the current version never break; the promoted version swaps the two tags."""

    pattern = Pattern.DUAL

    def validate(self, config: RotationConfig) -> None:
        super().validate(config)
        alternate = config.alternate_credential_id
        if not alternate:
            raise ConfigurationError(f"rotator {self.name} needs the {Tag.ALTERNATE_CREDENTIAL_ID} tag")
        if alternate == config.credential_id:
            raise ConfigurationError(
                f"{Tag.ALTERNATE_CREDENTIAL_ID} must differ from {Tag.CREDENTIAL_ID} ({alternate!r})"
            )

    def target_credential_id(self, config: RotationConfig) -> str:
        assert config.alternate_credential_id is not None  # checked by validate()
        return config.alternate_credential_id

    def next_tags(self, config: RotationConfig) -> dict[str, str]:
        assert config.alternate_credential_id is not None
        return {
            Tag.CREDENTIAL_ID: config.alternate_credential_id,
            Tag.ALTERNATE_CREDENTIAL_ID: config.credential_id,
        }
