"""Local management plane: the Azure Resource Manager operations the issue-7 rotators call, over TLS.

What the SDKs (`azure-mgmt-storage`, `azure-mgmt-postgresqlflexibleservers`, `azure-mgmt-sql`) put on the
wire reaches this double through their documented `base_url` and `credential_scopes` options:
- a bearer token for `https://management.azure.com/` (minted by the stack's identity endpoint and checked
  with `tests.doubles.tokens`), else 401 `AuthenticationFailed`;
- an `api-version` query parameter the resource provider knows, else 400 `MissingApiVersionParameter` /
  `InvalidApiVersionParameter`;
- a well-formed resource ID of a resource that exists, else 404 `ResourceGroupNotFound` /
  `ResourceNotFound`; errors in ARM's shape `{"error": {"code", "message"}}`.
The resource providers live in `management_storage` (account keys, kept in step with a dedicated Azurite)
and `management_servers` (PostgreSQL flexible and Azure SQL server updates as long-running operations);
`management_graph` serves Microsoft Graph's application passwords (token for `https://graph.microsoft.com`)
and the Entra token authority that checks them.

Test control API (no auth, never part of Azure's surface):
    GET /__control/requests, POST /__control/requests/reset   what the double saw (method, path, status)
    PUT /__control/servers/{provider}/{name} {"administratorLogin"}   create a server resource
Bodies are never logged; only method, path and status are.

Run: python -m tests.doubles.management --port P --cert C --key K --key-file T --subscription-id S
     --state-dir D --azurite-bin B --target-account A --target-blob-port P2 --pg-admin-dsn DSN
"""

from __future__ import annotations

import argparse
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.doubles import tokens
from tests.doubles.identity import PathOnlyAccessLogger

# ARM accepts tokens for its resource with or without the trailing slash (the SDK asks for
# "https://management.azure.com/.default", which the managed-identity endpoint turns into the resource
# without the slash).
ARM_AUDIENCES = frozenset({"https://management.azure.com/", "https://management.azure.com"})
RESOURCE_GROUP = "rotation-local"
CONTROL = "/__control"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def arm_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """ARM's error response shape (the common `ErrorResponse` definition of the REST specs)."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@dataclass
class Plane:
    """What the whole double shares: the token key, the one subscription and what it was asked."""

    token_key: bytes
    subscription_id: str
    seen: list[dict[str, Any]] = field(default_factory=list)

    def base_url(self, request: web.Request) -> str:
        # Behind the fault proxy the client used the proxy's address: operation URLs must name it.
        host = request.headers.get("X-Forwarded-Host", request.host)
        scheme = request.headers.get("X-Forwarded-Proto", request.scheme)
        return f"{scheme}://{host}"

    def check_group(self, subscription: str, group: str) -> web.Response | None:
        if subscription.lower() != self.subscription_id.lower():
            return arm_error(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")
        if group.lower() != RESOURCE_GROUP:
            return arm_error(404, "ResourceGroupNotFound", f"Resource group '{group}' could not be found.")
        return None


PLANE = web.AppKey("plane", Plane)


def check_api_version(request: web.Request, supported: tuple[str, ...]) -> web.Response | None:
    version = request.query.get("api-version")
    if not version:
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in supported:
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{','.join(supported)}'.",
        )
    return None


def _authorized(request: web.Request, plane: Plane, audiences: frozenset[str]) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return False
    for audience in audiences:
        try:
            tokens.verify(plane.token_key, token.strip(), audience)
        except tokens.TokenError:
            continue
        return True
    return False


def _unauthorized(request: web.Request, plane: Plane) -> web.Response | None:
    """None when the request needs no token (the token authority) or carries one for its plane."""
    path = request.path.lower()
    if path.startswith("/subscriptions/"):
        if _authorized(request, plane, ARM_AUDIENCES):
            return None
        return arm_error(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing or invalid.",
            {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/common"'},
        )
    if path.startswith("/v1.0/"):
        from tests.doubles.management_graph import GRAPH_AUDIENCES, graph_error

        if _authorized(request, plane, GRAPH_AUDIENCES):
            return None
        return graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
    return None


@web.middleware
async def record_and_authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every Azure-surface request is recorded (for the tests' counts); ARM and Graph need a token."""
    if request.path.startswith(CONTROL) or request.path == "/ping":
        return await handler(request)
    plane = request.app[PLANE]
    denied = _unauthorized(request, plane)
    response = denied if denied is not None else await handler(request)
    plane.seen.append({"method": request.method, "path": request.path, "status": response.status})
    return response


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response(request.app[PLANE].seen)


async def reset_requests(request: web.Request) -> web.Response:
    request.app[PLANE].seen.clear()
    return web.json_response({})


async def ping(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def not_found(request: web.Request) -> web.Response:
    # Any path the double does not serve answers as ARM does for an unknown route.
    return arm_error(404, "InvalidResourceType", f"The resource type could not be found for {request.path}.")


def create_app(plane: Plane, providers: Sequence[Callable[[web.Application], None]]) -> web.Application:
    app = web.Application(middlewares=[record_and_authenticate])
    app[PLANE] = plane
    app.router.add_get("/ping", ping)
    app.router.add_get(f"{CONTROL}/requests", get_requests)
    app.router.add_post(f"{CONTROL}/requests/reset", reset_requests)
    for add in providers:
        add(app)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def main(argv: list[str] | None = None) -> None:
    from tests.doubles import management_graph, management_servers, management_storage

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--key-file", type=Path, required=True, help="the stack's token signing key")
    parser.add_argument("--subscription-id", required=True)
    parser.add_argument("--tenant-id", required=True)
    parser.add_argument("--state-dir", type=Path, required=True, help="keys and Azurite data of the target account")
    parser.add_argument("--azurite-bin", type=Path, required=True, help="azurite-blob, run for the target account")
    parser.add_argument("--target-account", required=True)
    parser.add_argument("--target-blob-port", type=int, required=True)
    parser.add_argument("--pg-admin-dsn", required=True, help="where flexible-server password updates are applied")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    plane = Plane(tokens.load_key(args.key_file), args.subscription_id)
    storage = management_storage.TargetAccount(
        args.target_account, args.state_dir, args.azurite_bin, args.host, args.target_blob_port
    )
    providers = [
        storage.install,
        management_servers.Servers(args.pg_admin_dsn).install,
        management_graph.Graph(args.tenant_id, plane.token_key).install,
    ]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    web.run_app(
        create_app(plane, providers),
        host=args.host,
        port=args.port,
        ssl_context=context,
        access_log_class=PathOnlyAccessLogger,
    )


if __name__ == "__main__":
    # Run the imported module's main: the provider modules share its PLANE key, not __main__'s copy.
    from tests.doubles.management import main as imported_main

    imported_main()
