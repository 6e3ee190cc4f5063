"""Key Vault's front end in the Key Vault double: authentication, api-version, RBAC, paging, request parsing.

Shared by the handlers of live secrets (`tests.doubles.keyvault`) and of deleted ones
(`tests.doubles.keyvault_deleted`): `data_plane(operation)` wraps a handler in the checks Key Vault makes
before it touches an object, in its order: count, bearer challenge, api-version, RBAC on the data action.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from tests.doubles import tokens
from tests.doubles.keyvault_errors import KvError, bad, not_found
from tests.doubles.keyvault_rules import EVERY_SECRET
from tests.doubles.keyvault_store import API_VERSION_COUNT, VAULTS, Secret, VaultStore, Version

RESOURCE = "https://vault.azure.net"
# Oldest to newest: the error for an unknown version names the last one as the latest.
SUPPORTED_API_VERSIONS = ("7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01")
MAX_PAGE = 25  # Key Vault's own cap on maxresults
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE_BYTES = 25 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def store_of(request: web.Request) -> VaultStore:
    return request.app[VAULTS].for_authority(request.host, request.scheme)


def base_url(request: web.Request) -> str:
    # The proxy rewrites Host so it reaches the same vault; the forwarded values keep ids on the proxy's URL.
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    host = request.headers.get("X-Forwarded-Host", request.host)
    return f"{scheme}://{host}"


def secret_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not NAME_RE.match(name):
        raise bad(f"The secret name '{name[:140]}' is invalid: use 1-127 characters of [0-9a-zA-Z-].")
    return name


def live_secret(request: web.Request) -> Secret:
    name = secret_name(request)
    secret = store_of(request).secrets.get(name.lower())
    if secret is None:
        raise not_found(name)
    return secret


def version_of(request: web.Request, secret: Secret) -> Version:
    wanted = request.match_info.get("version", "").lower()
    if not wanted:
        return secret.versions[-1]
    for v in secret.versions:
        if v.version == wanted:
            return v
    raise not_found(secret.name, wanted)


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise bad("The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object.")
    return body


def data_plane(operation: str) -> Callable[[Handler], Handler]:
    """Count the request, enforce the bearer challenge, then the api-version, like Key Vault's front end."""

    def wrap(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            vaults, store = request.app[VAULTS], store_of(request)
            store.counts[operation] += 1
            auth = request.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            reason, claims = "", {}
            if scheme.lower() != "bearer" or not token.strip():
                reason = "AKV10000: Request is missing a Bearer or PoP token."
            else:
                try:
                    claims = tokens.verify(vaults.key, token.strip(), RESOURCE)
                except tokens.TokenError as exc:
                    reason = f"AKV10022: Invalid token: {exc}."
            if reason:
                store.counts["unauthorized"] += 1
                authority = f"https://login.microsoftonline.com/{vaults.tenant_id}"
                challenge = f'Bearer authorization="{authority}", resource="{RESOURCE}"'
                return KvError(401, "Unauthorized", reason).response({"WWW-Authenticate": challenge})
            api_version = request.query.get("api-version", "")
            if api_version not in SUPPORTED_API_VERSIONS:
                raise bad(
                    f"The specified version ({api_version}) is not recognized. Consider using the latest "
                    f"supported version ({SUPPORTED_API_VERSIONS[-1]})."
                )
            store.counts[API_VERSION_COUNT + api_version] += 1
            try:
                # Vault-wide operations (the listings) are authorized at the vault's scope.
                name = request.match_info.get("name", EVERY_SECRET)
                store.rbac.check(operation, name, store.authority, claims)
            except KvError:
                store.counts["forbidden"] += 1
                raise
            return await handler(request)

        return wrapped

    return wrap


def page(request: web.Request, keys: list[str]) -> tuple[int, int, str | None]:
    """Slice bounds for sorted keys after $skiptoken, and the next token."""
    raw = request.query.get("maxresults")
    try:
        size = MAX_PAGE if raw is None else int(raw)
    except ValueError as exc:
        raise bad("maxresults must be an integer.") from exc
    if not 1 <= size <= MAX_PAGE:
        raise bad(f"maxresults must be between 1 and {MAX_PAGE}.")
    token = request.query.get("$skiptoken")
    start = 0 if not token else (keys.index(token) + 1 if token in keys else bisect.bisect_right(keys, token))
    end = min(start + size, len(keys))
    return start, end, keys[end - 1] if end < len(keys) else None


def listing(request: web.Request, path: str, items: list[dict[str, Any]], next_token: str | None) -> web.Response:
    next_link = None
    if next_token is not None:
        size = request.query.get("maxresults", str(MAX_PAGE))
        version = request.query["api-version"]
        next_link = f"{base_url(request)}{path}?api-version={version}&$skiptoken={next_token}&maxresults={size}"
    return web.json_response({"value": items, "nextLink": next_link})
