"""A small typed client for the three Microsoft Graph calls the entra-app-secret rotator makes: read an
application, `addPassword`, `removePassword` (v1.0).

Why not the Graph SDK: it pulls in Kiota and hundreds of generated modules for three requests; this is
azure-core's own async pipeline (the one every Azure SDK here runs on) with its bearer-token, retry and
logging policies, so tokens, retries, TLS trust and the HTTP log redaction behave as in the other clients.
Imported only when the rotator runs, never on the cold-start path. The endpoint and the transport (the
shared connection pool) come from the `ProviderContext`; tokens are for `https://graph.microsoft.com/.default`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from azure.core import AsyncPipelineClient
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import (
    AsyncBearerTokenCredentialPolicy,
    AsyncRetryPolicy,
    HttpLoggingPolicy,
    UserAgentPolicy,
)
from azure.core.rest import HttpRequest

from secret_rotation.errors import ConfigurationError
from secret_rotation.rotator import ProviderContext
from secret_rotation.secret_value import SecretValue

GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class PasswordCredential:
    key_id: str
    display_name: str


@dataclass(frozen=True)
class Application:
    object_id: str
    app_id: str
    passwords: tuple[PasswordCredential, ...]


class GraphApplications:
    def __init__(self, context: ProviderContext) -> None:
        if context.credential is None:
            raise ConfigurationError("entra-app-secret needs the managed identity (ProviderContext.credential)")
        self._base = context.graph_endpoint.rstrip("/")
        self._client: AsyncPipelineClient[HttpRequest, Any] = AsyncPipelineClient(
            base_url=self._base,
            policies=[
                UserAgentPolicy(sdk_moniker="secret-rotation-graph"),
                AsyncRetryPolicy(retry_total=3),
                AsyncBearerTokenCredentialPolicy(context.credential, GRAPH_SCOPE),
                HttpLoggingPolicy(),  # headers only, with Authorization redacted; never bodies
            ],
            transport=context.transport(),
        )

    async def __aenter__(self) -> GraphApplications:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._client.__aexit__(kind, exc, tb)

    async def _send(self, method: str, path: str, body: Any = None) -> Any:
        request = HttpRequest(method, f"{self._base}/v1.0/{path}", json=body)
        response = await self._client.send_request(request)
        if response.status_code >= 400:
            await response.read()
            raise HttpResponseError(response=response)
        if response.status_code == 204:
            return None
        await response.read()
        return response.json()

    async def get(self, object_id: str) -> Application:
        body = await self._send("GET", f"applications/{object_id}")
        passwords = tuple(
            PasswordCredential(str(p["keyId"]), str(p.get("displayName") or ""))
            for p in body.get("passwordCredentials") or []
        )
        return Application(str(body["id"]), str(body["appId"]), passwords)

    async def add_password(self, object_id: str, display_name: str, ends: dt.datetime) -> tuple[str, SecretValue]:
        """(keyId, secretText) of a new password; Graph returns the text in this answer only."""
        credential = {"displayName": display_name, "endDateTime": ends.isoformat()}
        body = await self._send("POST", f"applications/{object_id}/addPassword", {"passwordCredential": credential})
        return str(body["keyId"]), SecretValue(str(body["secretText"]))

    async def remove_password(self, object_id: str, key_id: str) -> None:
        await self._send("POST", f"applications/{object_id}/removePassword", {"keyId": key_id})
