"""Dual-style: an Entra ID application's client secret (Microsoft's AAD app sample).

Tags: `CredentialId` = the keyId of the password the current version holds, `ProviderAddress` =
`/tenants/{tenant ID}/applications/{application object ID}` (ROTATION_ALLOWED_SCOPES allows a whole
tenant, `/tenants/{id}`, or single applications). `AlternateCredentialId` = the keyId the previous version
holds; the service writes it. Secret value: the secret text alone.
Graph chooses the secret (`addPassword`), so this rotator `issues_credentials`, and Graph names its keyId,
which becomes the promoted version's `CredentialId`. In `apply`: remove leftovers of a crashed earlier
attempt (passwords of this service that no version holds), add the new password, prove it with a real
client-credentials token request, and only then remove the password from two rotations ago. The
application keeps the current and the previous secret working: at most two passwords of this service
after every rotation (three between `addPassword` and the verified removal).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from secret_rotation.errors import ConfigurationError, TransientError, VerificationError
from secret_rotation.rotator import ApplyRequest, Credential, DualCredentialRotator, Rotator
from secret_rotation.tags import RotationConfig, Tag

from .azure_management import call

if TYPE_CHECKING:
    from .graph_applications import GraphApplications

MANAGED_NAME = "secret-rotation"  # the displayName of every password this service adds
ISSUED = "issued-by-graph"  # the pending record's credential id until Graph names the keyId
MAX_LIFETIME_DAYS = 730
# Graph may take a moment before a new password works at the token endpoint.
PROPAGATION_TRIES, PROPAGATION_DELAY_SECONDS = 5, 2.0


@dataclass(frozen=True)
class EntraAddress:
    tenant: str
    object_id: str

    @property
    def scope(self) -> str:
        return f"/tenants/{self.tenant}/applications/{self.object_id}"

    @classmethod
    def parse(cls, address: str) -> EntraAddress:
        parts = address.strip().strip("/").split("/")
        if len(parts) != 4 or parts[0].lower() != "tenants" or parts[2].lower() != "applications":
            raise ConfigurationError(
                f"ProviderAddress {address!r} must be /tenants/{{tenant}}/applications/{{object id}}"
            )
        return cls(_guid(parts[1], "tenant ID"), _guid(parts[3], "application object ID"))


def _guid(text: str, what: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ConfigurationError(f"{what} {text!r} is not a GUID") from None


class EntraAppSecretRotator(DualCredentialRotator):
    name = "entra-app-secret"
    issues_credentials = True

    def scope(self, config: RotationConfig) -> str:
        return EntraAddress.parse(config.provider_address).scope

    def validate(self, config: RotationConfig) -> None:
        Rotator.validate(self, config)  # the previous keyId is the service's to write, not a required tag
        _guid(config.credential_id, Tag.CREDENTIAL_ID.value)
        if config.alternate_credential_id is not None:
            _guid(config.alternate_credential_id, Tag.ALTERNATE_CREDENTIAL_ID.value)
            if config.alternate_credential_id == config.credential_id:
                # apply removes the previous password: that must never be the one readers hold.
                raise ConfigurationError(
                    f"{Tag.ALTERNATE_CREDENTIAL_ID} must differ from {Tag.CREDENTIAL_ID} ({config.credential_id})"
                )

    def target_credential_id(self, config: RotationConfig) -> str:
        return ISSUED

    def next_tags(self, config: RotationConfig) -> dict[str, str]:
        # The engine writes the new keyId as CredentialId; the current one becomes the previous.
        return {Tag.ALTERNATE_CREDENTIAL_ID.value: config.credential_id}

    def _graph(self) -> GraphApplications:
        from .graph_applications import GraphApplications

        return GraphApplications(self.context)

    async def apply(self, request: ApplyRequest) -> Credential:
        config, address = request.config, EntraAddress.parse(request.config.provider_address)
        what = f"application {address.object_id}"
        keep = {config.credential_id, config.alternate_credential_id}
        ends = dt.datetime.now(dt.UTC) + dt.timedelta(days=min(2 * config.validity_days, MAX_LIFETIME_DAYS))
        async with self._graph() as graph:
            app = await call(f"{what}: read", graph.get(address.object_id))
            for leftover in [p for p in app.passwords if p.display_name == MANAGED_NAME and p.key_id not in keep]:
                await call(f"{what}: remove leftover", graph.remove_password(address.object_id, leftover.key_id))
            key_id, secret = await call(
                f"{what}: addPassword", graph.add_password(address.object_id, MANAGED_NAME, ends)
            )
            new = Credential(key_id, secret)
            if not await self._proven(address, app.app_id, new):
                raise VerificationError(f"{what}: the new password gets no token yet")
            previous = config.alternate_credential_id
            if previous and previous in {p.key_id for p in app.passwords}:
                await call(f"{what}: removePassword", graph.remove_password(address.object_id, previous))
        return new

    async def _proven(self, address: EntraAddress, app_id: str, credential: Credential) -> bool:
        for attempt in range(PROPAGATION_TRIES):
            if await self._token(address, app_id, credential):
                return True
            if attempt + 1 < PROPAGATION_TRIES:
                await asyncio.sleep(PROPAGATION_DELAY_SECONDS)
        return False

    async def _token(self, address: EntraAddress, app_id: str, credential: Credential) -> bool:
        """A real client-credentials token request with this secret (azure-identity)."""
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
        from azure.identity.aio import ClientSecretCredential

        from .graph_applications import GRAPH_SCOPE

        client = ClientSecretCredential(
            address.tenant,
            app_id,
            credential.secret.reveal(),
            authority=self.context.authority_host,
            transport=self.context.transport(),
        )
        try:
            async with client:
                await client.get_token(GRAPH_SCOPE)
        except ClientAuthenticationError as exc:
            if isinstance(exc, HttpResponseError) and exc.status_code not in (400, 401):
                raise TransientError(f"token authority answered {exc.status_code}") from None
            return False
        return True

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        address = EntraAddress.parse(config.provider_address)
        async with self._graph() as graph:
            app = await call(f"application {address.object_id}: read", graph.get(address.object_id))
        return await self._token(address, app.app_id, credential)
