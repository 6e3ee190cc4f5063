"""Key Vault secrets REST double (api-version 7.2-7.6 and 2025-07-01) served over TLS for the local stack.

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
    allowed on a disabled secret."; listing versions shows `enabled`, tags and content type, no value;
    versions listed in version-id order, not creation order; `created`/`updated` in unix seconds, so
    versions created in the same second share them; versions of a missing secret: 200, empty list;
    soft delete (`keyvault_deleted`): DELETE moves a secret with all versions to /deletedsecrets (GET list
    and one, POST .../recover, DELETE = purge: 204, or 403 `Forbidden` under purge protection), and a PUT
    to a deleted name answers 409 `Conflict`, inner error `ObjectIsDeletedButRecoverable`;
    api-version 2025-07-01 accepted alongside 7.2-7.6; others answer 400 `BadParameter`;
    metadata limits: at most 15 tags, names and values of at most 512 characters, contentType of at
    most 255 (400 `BadParameter`, and a refused update changes nothing).

Management API (`keyvault_management`; no auth, like Lowkey Vault; not part of Key Vault's API). The
`vault=<authority or URL>` query parameter names one vault; the read and clock endpoints act on all
vaults without it, the settings endpoints require it:
    GET  /ping
    POST /management/time-shift?seconds=N        move every timestamp N seconds into the past
    GET  /management/requests                    per-operation request counts (+ unauthorized, forbidden,
                                                 total, and apiVersions: authenticated requests per version)
    POST /management/requests/reset
    PUT  /management/rbac?vault=V  {"rules": [{"secret": NAME, "deny": [OPERATION, ...]}, ...]}
                                  replace the vault's per-secret RBAC denials; OPERATION is one of set,
                                  update, get, list_versions, delete, recover, purge, list, list_deleted,
                                  or the shorthands write (= set + update) and read (= get +
                                  list_versions); names are case-insensitive, and "*" means every secret
                                  plus the vault-wide listings (list, list_deleted). So {"secret":
                                  "A--rotation-pending", "deny": ["write"]} lets the identity write A but
                                  not its pending record, and vice versa.
    GET  /management/rbac?vault=V    DELETE /management/rbac?vault=V (no denials)
    PUT  /management/policy?vault=V  {"require_content_type": bool, "require_expiry": bool}
                                  assign the built-in "Secrets should have content type set" and/or "Key
                                  Vault secrets should have an expiration date" with the Deny effect
    GET  /management/policy?vault=V  DELETE /management/policy?vault=V (no policy)
    PUT  /management/purge-protection?vault=V  {"enabled": bool}   (default off; recoveryLevel becomes
                                  "Recoverable"; Azure never turns it off again, the double does so tests
                                  can reset a vault)
    GET  /management/purge-protection?vault=V

Run: python -m tests.doubles.keyvault --host 127.0.0.1 --port 8443 --cert C --key K --key-file T --tenant-id G
"""

from __future__ import annotations

import argparse
import logging
import ssl
import uuid
from pathlib import Path

from aiohttp import web

from tests.doubles import keyvault_deleted, keyvault_management, tokens
from tests.doubles.identity import PathOnlyAccessLogger
from tests.doubles.keyvault_errors import KvError, bad
from tests.doubles.keyvault_http import (
    MAX_VALUE_BYTES,
    Handler,
    base_url,
    data_plane,
    json_body,
    listing,
    live_secret,
    page,
    secret_name,
    store_of,
    version_of,
)
from tests.doubles.keyvault_store import VAULTS, Secret, Vaults, Version, apply_common, item, now


@data_plane("set")
async def set_secret(request: web.Request) -> web.StreamResponse:
    name = secret_name(request)
    body = await json_body(request)
    value = body.get("value")
    if not isinstance(value, str) or len(value.encode()) > MAX_VALUE_BYTES:
        raise bad(f"value must be a string of at most {MAX_VALUE_BYTES} bytes.")
    created = now()
    v = Version(version=uuid.uuid4().hex, value=value, created=created, updated=created)
    apply_common(v, body)
    store = store_of(request)
    if name.lower() in store.deleted:
        message = (
            f"Secret {name} is currently in a deleted but recoverable state, and its name cannot be reused; "
            "in this state, the secret can only be recovered or purged."
        )
        raise KvError(409, "Conflict", message, "ObjectIsDeletedButRecoverable")
    try:
        store.policy.check_new_version(name, v.content_type, v.exp)
    except KvError:
        store.counts["forbidden"] += 1
        raise
    secret = store.secrets.setdefault(name.lower(), Secret(name=name))
    secret.versions.append(v)
    ident = f"{base_url(request)}/secrets/{secret.name}/{v.version}"
    return web.json_response(item(ident, v, v.value, store.recovery_level))


@data_plane("get")
async def get_secret(request: web.Request) -> web.StreamResponse:
    secret = live_secret(request)
    v = version_of(request, secret)
    if not v.enabled:
        message = "Operation get is not allowed on a disabled secret."
        raise KvError(403, "Forbidden", message, "SecretDisabled")
    ident = f"{base_url(request)}/secrets/{secret.name}/{v.version}"
    return web.json_response(item(ident, v, v.value, store_of(request).recovery_level))


@data_plane("update")
async def update_secret(request: web.Request) -> web.StreamResponse:
    secret = live_secret(request)
    v = version_of(request, secret)
    body = await json_body(request)
    apply_common(v, body)
    v.updated = now()
    ident = f"{base_url(request)}/secrets/{secret.name}/{v.version}"
    return web.json_response(item(ident, v, recovery_level=store_of(request).recovery_level))


@data_plane("list")
async def list_secrets(request: web.Request) -> web.StreamResponse:
    store = store_of(request)
    secrets, level = store.secrets, store.recovery_level
    keys = sorted(secrets)
    start, end, token = page(request, keys)
    base = f"{base_url(request)}/secrets"
    items = [item(f"{base}/{secrets[k].name}", secrets[k].versions[-1], recovery_level=level) for k in keys[start:end]]
    return listing(request, "/secrets", items, token)


@data_plane("list_versions")
async def list_versions(request: web.Request) -> web.StreamResponse:
    name, store = secret_name(request), store_of(request)
    secret = store.secrets.get(name.lower())
    # Key Vault pages through versions in version-id order, and a missing secret has no versions: 200, empty.
    versions = sorted(secret.versions, key=lambda v: v.version) if secret else []
    start, end, token = page(request, [v.version for v in versions])
    name = secret.name if secret else name
    base = f"{base_url(request)}/secrets/{name}"
    items = [item(f"{base}/{v.version}", v, recovery_level=store.recovery_level) for v in versions[start:end]]
    return listing(request, f"/secrets/{name}/versions", items, token)


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
    keyvault_deleted.add_routes(app)
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
