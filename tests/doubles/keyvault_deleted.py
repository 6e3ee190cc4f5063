"""Soft delete in the Key Vault double: /deletedsecrets, recover, purge, and names reserved while deleted.

Key Vault keeps a deleted secret (all its versions) recoverable for the vault's retention period (90
days here): it is listed under /deletedsecrets, can be recovered or, unless the vault has purge
protection, purged; until then its name cannot be reused. Purge protection is a per-vault setting of
the management API (`tests.doubles.keyvault_management`).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.doubles.keyvault_errors import KvError, deleted_not_found, not_found
from tests.doubles.keyvault_http import base_url, data_plane, listing, live_secret, page, secret_name, store_of
from tests.doubles.keyvault_store import Deleted, VaultStore, item, now

RETENTION_DAYS = 90


def _deleted(request: web.Request, *, recovering: bool = False) -> Deleted:
    name = secret_name(request)
    deleted = store_of(request).deleted.get(name.lower())
    if deleted is None:
        # Recorded sessions: a recover of a missing name answers the live secret's 404, the others this one.
        raise not_found(name) if recovering else deleted_not_found(name)
    return deleted


def _deleted_item(request: web.Request, store: VaultStore, deleted: Deleted) -> dict[str, Any]:
    """A DeletedSecretBundle/Item: the latest version's id, attributes and tags, and the recovery data."""
    secret, latest = deleted.secret, deleted.secret.versions[-1]
    body = item(f"{base_url(request)}/secrets/{secret.name}", latest, recovery_level=store.recovery_level)
    body["recoveryId"] = f"{base_url(request)}/deletedsecrets/{secret.name}"
    body["deletedDate"] = deleted.deleted_date
    body["scheduledPurgeDate"] = deleted.deleted_date + RETENTION_DAYS * 86400
    return body


@data_plane("delete")
async def delete_secret(request: web.Request) -> web.StreamResponse:
    secret, store = live_secret(request), store_of(request)
    del store.secrets[secret.name.lower()]
    deleted = store.deleted[secret.name.lower()] = Deleted(secret, now())
    body = _deleted_item(request, store, deleted)
    body["id"] = f"{body['id']}/{secret.versions[-1].version}"
    return web.json_response(body)


@data_plane("get_deleted")
async def get_deleted(request: web.Request) -> web.StreamResponse:
    return web.json_response(_deleted_item(request, store_of(request), _deleted(request)))


@data_plane("list_deleted")
async def list_deleted(request: web.Request) -> web.StreamResponse:
    store = store_of(request)
    keys = sorted(store.deleted)
    start, end, token = page(request, keys)
    items = [_deleted_item(request, store, store.deleted[k]) for k in keys[start:end]]
    return listing(request, "/deletedsecrets", items, token)


@data_plane("recover")
async def recover(request: web.Request) -> web.StreamResponse:
    deleted, store = _deleted(request, recovering=True), store_of(request)
    secret = deleted.secret
    del store.deleted[secret.name.lower()]
    store.secrets[secret.name.lower()] = secret
    latest = secret.versions[-1]
    ident = f"{base_url(request)}/secrets/{secret.name}/{latest.version}"
    return web.json_response(item(ident, latest, recovery_level=store.recovery_level))


@data_plane("purge")
async def purge(request: web.Request) -> web.StreamResponse:
    deleted, store = _deleted(request), store_of(request)
    if store.purge_protection:
        message = (
            'Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault '
            "service will automatically purge it after the retention period has passed. "
            f"Vault: {store.authority};location=local"
        )
        raise KvError(403, "Forbidden", message)
    del store.deleted[deleted.secret.name.lower()]
    return web.Response(status=204)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_delete("/secrets/{name}", delete_secret)
    r.add_get("/deletedsecrets", list_deleted, allow_head=False)
    r.add_get("/deletedsecrets/{name}", get_deleted, allow_head=False)
    r.add_delete("/deletedsecrets/{name}", purge)
    r.add_post("/deletedsecrets/{name}/recover", recover)
