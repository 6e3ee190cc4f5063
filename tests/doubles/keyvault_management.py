"""Management API of the Key Vault double (no auth, like Lowkey Vault's): clock, counters, per-vault settings.

Tests and tools call it at `<vault URL>/management/...`; it is not part of Key Vault's REST API. Every
endpoint takes an optional `vault=<authority or URL>` query parameter naming one vault; without it the
read and clock endpoints act on all vaults, and the settings endpoints (which configure one vault's
behaviour) refuse with 400. See `tests.doubles.keyvault` for the list.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from tests.doubles.keyvault_errors import bad
from tests.doubles.keyvault_rules import Policy, Rbac
from tests.doubles.keyvault_store import VAULTS, VaultStore, count_summary


def _selected(request: web.Request) -> list[VaultStore]:
    return request.app[VAULTS].select(request.query.get("vault"))


def _one(request: web.Request) -> VaultStore:
    vault = request.query.get("vault")
    if not vault:
        raise bad("this setting belongs to one vault: pass vault=<authority or URL>")
    return request.app[VAULTS].for_authority(vault)


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"null")
    except ValueError as exc:
        raise bad("The request body is not valid JSON.") from exc


async def time_shift(request: web.Request) -> web.Response:
    """Move timestamps N seconds into the past so secrets become due without waiting."""
    try:
        seconds = int(request.query["seconds"])
    except (KeyError, ValueError) as exc:
        raise bad("seconds must be an integer query parameter.") from exc
    shifted = 0
    for store in _selected(request):
        for deleted in store.deleted.values():
            deleted.deleted_date -= seconds
        for secret in [*store.secrets.values(), *(d.secret for d in store.deleted.values())]:
            for v in secret.versions:
                v.shift(seconds)
                shifted += 1
    return web.json_response({"seconds": seconds, "versionsShifted": shifted})


async def request_counts(request: web.Request) -> web.Response:
    return web.json_response(count_summary(_selected(request)))


async def reset_counts(request: web.Request) -> web.Response:
    for store in _selected(request):
        store.counts.clear()
    return await request_counts(request)


class _Setting(Protocol):
    def report(self) -> dict[str, Any]: ...


def _setting_routes(
    app: web.Application, name: str, parse: Callable[[Any], _Setting], off: Callable[[], _Setting]
) -> None:
    """GET, PUT (replace) and DELETE (back to `off()`) of the per-vault setting stored as `VaultStore.<name>`."""

    async def get(request: web.Request) -> web.Response:
        return web.json_response(getattr(_one(request), name).report())

    async def put(request: web.Request) -> web.Response:
        store, body = _one(request), await _body(request)
        setattr(store, name, parse(body))
        return await get(request)

    async def delete(request: web.Request) -> web.Response:
        setattr(_one(request), name, off())
        return await get(request)

    app.router.add_get(f"/management/{name}", get, allow_head=False)
    app.router.add_put(f"/management/{name}", put)
    app.router.add_delete(f"/management/{name}", delete)


def _protection(store: VaultStore) -> web.Response:
    return web.json_response({"enabled": store.purge_protection, "recoveryLevel": store.recovery_level})


async def get_purge_protection(request: web.Request) -> web.Response:
    return _protection(_one(request))


async def put_purge_protection(request: web.Request) -> web.Response:
    store, body = _one(request), await _body(request)
    if not isinstance(body, dict) or set(body) != {"enabled"} or not isinstance(body["enabled"], bool):
        raise bad('the body must be {"enabled": true|false}')
    # Azure never turns purge protection off again; the double allows it so tests can reset a vault.
    store.purge_protection = body["enabled"]
    return _protection(store)


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/management/time-shift", time_shift)
    r.add_get("/management/requests", request_counts)
    r.add_post("/management/requests/reset", reset_counts)
    _setting_routes(app, "rbac", Rbac.parse, Rbac)
    _setting_routes(app, "policy", Policy.parse, Policy)
    r.add_get("/management/purge-protection", get_purge_protection, allow_head=False)
    r.add_put("/management/purge-protection", put_purge_protection)
