"""Key Vault secrets REST double (api-version 7.2-7.6) served over TLS for the local stack.

It mimics what the real `azure.keyvault.secrets` SDK relies on: the bearer challenge (401 +
WWW-Authenticate with authorization/resource) on unauthenticated requests, bundle and paging shapes,
Key Vault's error bodies, and "latest = most recently created version". Secrets live in memory only,
in one vault per request authority (the Host header's `host:port`, see `keyvault_store`), so
`https://127.0.0.1:8443` and `https://localhost:8443` are two independent vaults. Ids and next links
are built from `X-Forwarded-Host`/`X-Forwarded-Proto` when a proxy (`tests.doubles.faults`) sets them,
so callers see the URL they used.

Behaviours pinned against Microsoft's REST specification and documentation by `tests/doubles_fidelity`:
    per-secret RBAC: a denied operation answers 403 `Forbidden`, inner error `ForbiddenByRbac`, with the
    data action in the message, before the secret is looked up (`keyvault_rules`);
    Azure Policy "Deny": a new version (PUT) lacking a required content type or expiry answers 403
    `Forbidden`, inner error `ForbiddenByPolicy`; updates of existing versions are not affected;
    disabled versions: a read answers 403 `Forbidden`, inner error `SecretDisabled`, "Operation get is not
    allowed on a disabled secret."; listing versions shows `enabled`, tags and content type, no value.

Management API (`keyvault_management`; no auth, like Lowkey Vault; not part of Key Vault's API). The
`vault=<authority or URL>` query parameter names one vault; the read and clock endpoints act on all
vaults without it, the settings endpoints require it:
    GET  /ping
    POST /management/time-shift?seconds=N        move every timestamp N seconds into the past
    GET  /management/requests                    per-operation request counts (+ unauthorized, forbidden)
    POST /management/requests/reset
    PUT  /management/rbac?vault=V  {"rules": [{"secret": NAME, "deny": [OPERATION, ...]}, ...]}
                                  replace the vault's per-secret RBAC denials; OPERATION is one of set,
                                  update, get, list_versions, delete, recover, purge, or the shorthands
                                  write (= set + update) and read (= get + list_versions); names are
                                  case-insensitive. So {"secret": "A--rotation-pending", "deny": ["write"]}
                                  lets the identity write A but not its pending record, and vice versa.
    GET  /management/rbac?vault=V    DELETE /management/rbac?vault=V (no denials)
    PUT  /management/policy?vault=V  {"require_content_type": bool, "require_expiry": bool}
                                  assign the built-in "Secrets should have content type set" and/or "Key
                                  Vault secrets should have an expiration date" with the Deny effect
    GET  /management/policy?vault=V  DELETE /management/policy?vault=V (no policy)

Run: python -m tests.doubles.keyvault --host 127.0.0.1 --port 8443 --cert C --key K --key-file T --tenant-id G
"""

from __future__ import annotations

import argparse
import bisect
import json
import logging
import re
import ssl
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.doubles import keyvault_management, tokens
from tests.doubles.identity import PathOnlyAccessLogger
from tests.doubles.keyvault_errors import KvError, bad, not_found
from tests.doubles.keyvault_store import VAULTS, Secret, Vaults, VaultStore, Version, apply_common, item, now

RESOURCE = "https://vault.azure.net"
SUPPORTED_API_VERSIONS = ("7.2", "7.3", "7.4", "7.5", "7.6")
MAX_PAGE = 25  # Key Vault's own cap on maxresults
NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
MAX_VALUE_BYTES = 25 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _store(request: web.Request) -> VaultStore:
    return request.app[VAULTS].for_authority(request.host, request.scheme)


def _base(request: web.Request) -> str:
    # The proxy rewrites Host so it reaches the same vault; the forwarded values keep ids on the proxy's URL.
    scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
    host = request.headers.get("X-Forwarded-Host", request.host)
    return f"{scheme}://{host}"


def _name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not NAME_RE.match(name):
        raise bad(f"The secret name '{name[:140]}' is invalid: use 1-127 characters of [0-9a-zA-Z-].")
    return name


def _secret(request: web.Request) -> Secret:
    name = _name(request)
    secret = _store(request).secrets.get(name.lower())
    if secret is None:
        raise not_found(name)
    return secret


def _version(request: web.Request, secret: Secret) -> Version:
    wanted = request.match_info.get("version", "").lower()
    if not wanted:
        return secret.versions[-1]
    for v in secret.versions:
        if v.version == wanted:
            return v
    raise not_found(secret.name, wanted)


async def _json_body(request: web.Request) -> dict[str, Any]:
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
            vaults, store = request.app[VAULTS], _store(request)
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
            if "name" in request.match_info:
                try:
                    store.rbac.check(operation, request.match_info["name"], store.authority, claims)
                except KvError:
                    store.counts["forbidden"] += 1
                    raise
            return await handler(request)

        return wrapped

    return wrap


@data_plane("set")
async def set_secret(request: web.Request) -> web.StreamResponse:
    name = _name(request)
    body = await _json_body(request)
    value = body.get("value")
    if not isinstance(value, str) or len(value.encode()) > MAX_VALUE_BYTES:
        raise bad(f"value must be a string of at most {MAX_VALUE_BYTES} bytes.")
    created = now()
    v = Version(version=uuid.uuid4().hex, value=value, created=created, updated=created)
    apply_common(v, body)
    store = _store(request)
    try:
        store.policy.check_new_version(name, v.content_type, v.exp)
    except KvError:
        store.counts["forbidden"] += 1
        raise
    secret = store.secrets.setdefault(name.lower(), Secret(name=name))
    secret.versions.append(v)
    return web.json_response(item(f"{_base(request)}/secrets/{secret.name}/{v.version}", v, v.value))


@data_plane("get")
async def get_secret(request: web.Request) -> web.StreamResponse:
    secret = _secret(request)
    v = _version(request, secret)
    if not v.enabled:
        message = "Operation get is not allowed on a disabled secret."
        raise KvError(403, "Forbidden", message, "SecretDisabled")
    return web.json_response(item(f"{_base(request)}/secrets/{secret.name}/{v.version}", v, v.value))


@data_plane("update")
async def update_secret(request: web.Request) -> web.StreamResponse:
    secret = _secret(request)
    v = _version(request, secret)
    body = await _json_body(request)
    apply_common(v, body)
    v.updated = now()
    return web.json_response(item(f"{_base(request)}/secrets/{secret.name}/{v.version}", v))


@data_plane("delete")
async def delete_secret(request: web.Request) -> web.StreamResponse:
    secret = _secret(request)
    del _store(request).secrets[secret.name.lower()]
    body = item(f"{_base(request)}/secrets/{secret.name}/{secret.versions[-1].version}", secret.versions[-1])
    # No recoveryId: the SDK then treats the delete as final instead of polling /deletedsecrets.
    body["deletedDate"] = now()
    return web.json_response(body)


def _page(request: web.Request, keys: list[str]) -> tuple[int, int, str | None]:
    """Slice bounds for keys (sorted or in creation order) after $skiptoken, and the next token."""
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


def _listing(request: web.Request, path: str, items: list[dict[str, Any]], next_token: str | None) -> web.Response:
    next_link = None
    if next_token is not None:
        size = request.query.get("maxresults", str(MAX_PAGE))
        version = request.query["api-version"]
        next_link = f"{_base(request)}{path}?api-version={version}&$skiptoken={next_token}&maxresults={size}"
    return web.json_response({"value": items, "nextLink": next_link})


@data_plane("list")
async def list_secrets(request: web.Request) -> web.StreamResponse:
    secrets = _store(request).secrets
    keys = sorted(secrets)
    start, end, token = _page(request, keys)
    base = f"{_base(request)}/secrets"
    items = [item(f"{base}/{secrets[k].name}", secrets[k].versions[-1]) for k in keys[start:end]]
    return _listing(request, "/secrets", items, token)


@data_plane("list_versions")
async def list_versions(request: web.Request) -> web.StreamResponse:
    secret = _secret(request)
    keys = [v.version for v in secret.versions]
    start, end, token = _page(request, keys)
    base = f"{_base(request)}/secrets/{secret.name}"
    items = [item(f"{base}/{v.version}", v) for v in secret.versions[start:end]]
    return _listing(request, f"/secrets/{secret.name}/versions", items, token)


async def ping(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@web.middleware
async def kv_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render KvError and routing failures in Key Vault's error shape."""
    try:
        return await handler(request)
    except KvError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return KvError(exc.status, "BadParameter" if exc.status != 404 else "NotFound", exc.reason).response()


def create_app(key: bytes, tenant_id: str) -> web.Application:
    """Build the aiohttp application (routes are matched in order: /versions before /{version})."""
    app = web.Application(middlewares=[kv_errors], client_max_size=1024 * 1024)
    app[VAULTS] = Vaults(key=key, tenant_id=tenant_id)
    r = app.router
    r.add_get("/ping", ping)
    keyvault_management.add_routes(app)
    r.add_get("/secrets", list_secrets)
    r.add_put("/secrets/{name}", set_secret)
    r.add_delete("/secrets/{name}", delete_secret)
    r.add_get("/secrets/{name}/versions", list_versions)
    for path in ("/secrets/{name}", "/secrets/{name}/", "/secrets/{name}/{version}"):
        r.add_get(path, get_secret, allow_head=False)
        r.add_patch(path, update_secret)
    return app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve HTTPS until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="server private key (PEM)")
    parser.add_argument("--key-file", type=Path, required=True, help="token signing key shared with identity")
    parser.add_argument("--tenant-id", required=True, help="tenant GUID announced in the challenge")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    app = create_app(tokens.ensure_key_file(args.key_file), args.tenant_id)
    web.run_app(app, host=args.host, port=args.port, ssl_context=context, access_log_class=PathOnlyAccessLogger)


if __name__ == "__main__":
    main()
