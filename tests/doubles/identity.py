"""Managed-identity token endpoint double speaking the App Service protocol (api-version 2019-08-01).

`azure.identity` (sync via MSAL, async via its own client) sends
`GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=<resource>[&client_id=...]` with the
`X-IDENTITY-HEADER` secret and expects `access_token` plus `expires_on` (epoch seconds, as a string).
Tokens are HS256 JWTs signed with the stack's key so the Key Vault double can verify them.

Run: python -m tests.doubles.identity --host 127.0.0.1 --port 8081 --key-file K --header-file H --client-id C
"""

from __future__ import annotations

import argparse
import hmac
import logging
import time
import uuid
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from tests.doubles import tokens

API_VERSION = "2019-08-01"
TOKEN_PATH = "/msi/token"
DEFAULT_LIFETIME = 24 * 3600  # real managed-identity tokens live about a day


class IdentityConfig:
    """What the endpoint needs to authenticate callers and mint tokens."""

    def __init__(
        self, key: bytes, header_secret: str, client_id: str, tenant_id: str, lifetime: int = DEFAULT_LIFETIME
    ) -> None:
        self.key = key
        self.header_secret = header_secret
        self.client_id = client_id
        self.tenant_id = tenant_id
        self.lifetime = lifetime
        # A stable object id per identity, like a real service principal.
        self.principal_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"principal:{client_id}"))


CONFIG = web.AppKey("config", IdentityConfig)


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Log method, path and status only: query strings and bodies never reach the log."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info("%s %s %s", request.method, request.path, response.status)


def _error(status: int, message: str) -> web.Response:
    # App Service answers errors with statusCode/message; the OAuth-style keys help generic clients.
    body = {"statusCode": status, "message": message, "error": "invalid_request"}
    return web.json_response(dict(body, error_description=message), status=status)


async def token(request: web.Request) -> web.Response:
    """Issue a token for `resource` to a caller that knows the identity header secret."""
    config = request.app[CONFIG]
    presented = request.headers.get("X-IDENTITY-HEADER", "")
    if not hmac.compare_digest(presented.encode(), config.header_secret.encode()):
        return _error(401, "The X-IDENTITY-HEADER header is missing or does not match the configured secret.")
    query = request.query
    if query.get("api-version") != API_VERSION:
        return _error(400, f"Unsupported api-version; this endpoint supports {API_VERSION}.")
    resource = query.get("resource", "")
    if not resource:
        return _error(400, "The 'resource' query parameter is required.")
    # Only the one user-assigned identity of this stack exists; other selectors cannot match it.
    for selector in ("object_id", "principal_id", "mi_res_id"):
        if selector in query:
            return _error(400, f"No managed identity matches {selector}.")
    client_id = query.get("client_id")
    if client_id is not None and client_id.lower() != config.client_id.lower():
        return _error(400, "No managed identity matches client_id.")
    now = int(time.time())
    expires_on = now + config.lifetime
    claims = {
        "aud": resource,
        "iss": f"https://sts.windows.net/{config.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": expires_on,
        "appid": config.client_id,
        "oid": config.principal_id,
        "sub": config.principal_id,
        "tid": config.tenant_id,
        "idtyp": "app",
    }
    return web.json_response(
        {
            "access_token": tokens.mint(config.key, claims),
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": config.client_id,
        }
    )


async def ping(_: web.Request) -> web.Response:
    """Readiness probe for scripts/stack.py."""
    return web.json_response({"status": "ok"})


def create_app(config: IdentityConfig) -> web.Application:
    """Build the aiohttp application."""
    app = web.Application()
    app[CONFIG] = config
    app.router.add_get(TOKEN_PATH, token)
    app.router.add_get("/ping", ping)
    return app


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key-file", type=Path, required=True, help="token signing key (created if missing)")
    # The header secret comes from a file so it never shows up in `ps` output.
    parser.add_argument("--header-file", type=Path, required=True, help="file holding X-IDENTITY-HEADER")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--tenant-id", required=True)
    parser.add_argument("--token-lifetime", type=int, default=DEFAULT_LIFETIME, help="seconds")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = IdentityConfig(
        key=tokens.ensure_key_file(args.key_file),
        header_secret=args.header_file.read_text().strip(),
        client_id=args.client_id,
        tenant_id=args.tenant_id,
        lifetime=args.token_lifetime,
    )
    web.run_app(create_app(config), host=args.host, port=args.port, access_log_class=PathOnlyAccessLogger)


if __name__ == "__main__":
    main()
