"""On-demand rotation: an operator's request ("rotate this secret now") turned into the same queue job the
Event Grid path enqueues, marked on-demand so the engine rotates even when the secret is not yet due.

Callers: the HTTP function `rotate_now` in `function_app.py` (function-key auth) and the CLI. The request
is `{"vault": "https://<name>.vault.azure.net", "secret": "<name>"}`; the answer is an HTTP status and a
small JSON body that names the vault, the secret and the correlation id, never a value (no value is read
here at all: whether the secret exists comes from its version listing).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .errors import ConfigurationError, RotationError, ScopeError, TransientError
from .events import SecretEventType, secret_event_payload
from .outcomes import Outcome, OutcomeReporter, Status
from .pending import PENDING_SUFFIX, pending_name
from .ports import JobQueue, SecretStores
from .scopes import Scopes

# A vault URL and a secret name fit in a few hundred bytes; anything much larger is not a request.
MAX_BODY_BYTES = 4096
# Key Vault's rule for object names.
SECRET_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")


class BadRequestError(ConfigurationError):
    """The request itself is unusable (400): the message says what to send instead."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any] = field(default_factory=dict)

    def json(self) -> str:
        return json.dumps(self.body)


@dataclass(frozen=True)
class OnDemandRequest:
    vault_url: str
    secret_name: str


def vault_url(raw: object) -> str:
    """The canonical vault URL (https, host, no path), or BadRequestError."""
    if not isinstance(raw, str) or not raw.strip():
        raise BadRequestError("'vault' must be the vault URL, e.g. https://<name>.vault.azure.net")
    parts = urlsplit(raw.strip())
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise BadRequestError("'vault' must be an https URL with no path, e.g. https://<name>.vault.azure.net")
    return f"https://{parts.netloc}".lower()


def secret_name(raw: object) -> str:
    if not isinstance(raw, str) or not SECRET_NAME.fullmatch(raw):
        raise BadRequestError("'secret' must be a Key Vault secret name (1-127 letters, digits and dashes)")
    if raw.endswith(PENDING_SUFFIX):
        raise BadRequestError(f"'secret' names a pending record ({PENDING_SUFFIX}); name the secret it belongs to")
    try:
        pending_name(raw)  # a name too long for its pending record can never rotate: say so now
    except ConfigurationError as exc:
        raise BadRequestError(str(exc)) from None
    return raw


def parse_request(body: bytes) -> OnDemandRequest:
    # The body is never quoted back: a caller who pasted a value by mistake must not see it echoed.
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequestError('the body must be JSON: {"vault": "<vault URL>", "secret": "<secret name>"}') from None
    if not isinstance(document, dict):
        raise BadRequestError('the body must be a JSON object: {"vault": "<vault URL>", "secret": "<secret name>"}')
    unknown = sorted(set(document) - {"vault", "secret"})
    if unknown:
        raise BadRequestError(f"unknown field(s) {', '.join(unknown)[:100]}: only 'vault' and 'secret' are accepted")
    return OnDemandRequest(vault_url(document.get("vault")), secret_name(document.get("secret")))


def _new_id() -> str:
    return uuid.uuid4().hex


class OnDemand:
    def __init__(
        self,
        stores: SecretStores,
        scopes: Scopes,
        queue: JobQueue,
        reporter: OutcomeReporter,
        *,
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._stores = stores
        self._scopes = scopes
        self._queue = queue
        self._reporter = reporter
        self._new_id = new_id

    async def handle(self, body: bytes) -> Answer:
        """One HTTP request body in, one answer out; every answer but 202 also logs one failure outcome."""
        correlation_id = self._new_id()
        if len(body) > MAX_BODY_BYTES:
            return await self._refuse(correlation_id, 413, f"body larger than {MAX_BODY_BYTES} bytes")
        try:
            request = parse_request(body)
        except BadRequestError as exc:
            return await self._refuse(correlation_id, 400, str(exc))
        return await self.enqueue(request, correlation_id=correlation_id)

    async def enqueue(self, request: OnDemandRequest, *, correlation_id: str | None = None) -> Answer:
        correlation_id = correlation_id or self._new_id()
        where = {"vault": request.vault_url, "secret": request.secret_name}
        try:
            self._scopes.check_vault(request.vault_url)
            # Properties only: no value is read on this path. The job names no version ("whatever is
            # current when the worker runs"), so a rotation between request and run is not undone.
            if not await self._stores.for_vault(request.vault_url).list_versions(request.secret_name):
                return await self._refuse(correlation_id, 404, "secret not found in this vault", where)
            payload = secret_event_payload(
                request.vault_url,
                request.secret_name,
                SecretEventType.NEAR_EXPIRY,
                event_id=correlation_id,
                expires_on=None,
                on_demand=True,
            )
            await self._queue.enqueue(json.dumps(payload))
        except ScopeError as exc:
            return await self._refuse(correlation_id, 403, str(exc), where)
        except TransientError as exc:
            return await self._refuse(correlation_id, 503, str(exc), where)
        except RotationError as exc:
            return await self._refuse(correlation_id, 502, str(exc), where)
        await self._reporter.report(
            Outcome(
                Status.ENQUEUED,
                correlation_id,
                vault_url=request.vault_url,
                secret_name=request.secret_name,
                reason="on-demand rotation requested",
            )
        )
        return Answer(202, {"correlationId": correlation_id, **where, "status": "enqueued"})

    async def _refuse(
        self, correlation_id: str, status: int, reason: str, where: dict[str, str] | None = None
    ) -> Answer:
        where = where or {}
        await self._reporter.report(
            Outcome(
                Status.FAILED,
                correlation_id,
                vault_url=where.get("vault"),
                secret_name=where.get("secret"),
                step="on-demand",
                reason=reason,
                retryable=status == 503,
            )
        )
        return Answer(status, {"correlationId": correlation_id, **where, "error": reason})
