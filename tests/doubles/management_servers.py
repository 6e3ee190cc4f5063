"""Database servers in the local management plane: PostgreSQL flexible servers and Azure SQL servers whose
administrator password changes through a long-running `PATCH`, as the resource providers do it.

`PATCH .../flexibleServers/{name}` or `.../Microsoft.Sql/servers/{name}` with
`{"properties": {"administratorLoginPassword": ...}}` answers 202 with `Azure-AsyncOperation`, `Location`
and `Retry-After`; the operation reads `InProgress` on its first poll and `Succeeded` (or `Failed` with an
error) once the change is applied; `Location` answers 202 until then and the resource afterwards.
A flexible server is the stack's PostgreSQL: the password is applied to its administrator role there, so
a real login proves it. An Azure SQL server has no local engine: the double keeps a salted hash of the
password and answers login checks on its control API (the SQL rotator's local login seam).

Control API: PUT /__control/servers/{kind}/{name} {"administratorLogin", "administratorLoginPassword"?}
creates a server (kind `flexibleServers` or `sqlServers`); GET /__control/servers/{kind}/{name} reports
its `passwordUpdates`;
POST /__control/servers/sqlServers/{name}/login {"login", "password"} -> {"accepted": bool}.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.doubles.management import PLANE, arm_error, check_api_version

# The api-versions the pinned azure-mgmt-postgresqlflexibleservers and azure-mgmt-sql send.
KINDS = {
    "flexibleServers": ("Microsoft.DBforPostgreSQL", "flexibleServers", ("2026-10-01",)),
    "sqlServers": ("Microsoft.Sql", "servers", ("2025-01-01",)),
}
GROUP = "/subscriptions/{sub}/resourceGroups/{group}/providers"


@dataclass
class Server:
    kind: str
    name: str
    administrator_login: str
    password_updates: int = 0
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(16))
    password_hash: bytes | None = None


@dataclass
class Operation:
    task: asyncio.Task[None]
    server: Server
    polls: int = 0
    error: str | None = None


class Servers:
    def __init__(self, pg_admin_dsn: str) -> None:
        self.pg_admin_dsn = pg_admin_dsn
        self.servers: dict[tuple[str, str], Server] = {}
        self.operations: dict[str, Operation] = {}

    # --- applying a password ------------------------------------------------------------------------

    async def _apply(self, server: Server, password: str) -> None:
        if server.kind == "sqlServers":
            server.password_hash = hashlib.pbkdf2_hmac("sha256", password.encode(), server.salt, 1000)
            return
        import psycopg
        from psycopg import sql

        async with await psycopg.AsyncConnection.connect(self.pg_admin_dsn, autocommit=True) as conn:
            # A SCRAM verifier computed here, so the clear password never reaches the server's log.
            role = server.administrator_login
            verifier = conn.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
            await conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier)))

    # --- ARM surface --------------------------------------------------------------------------------

    def _server(self, request: web.Request, kind: str) -> Server | web.Response:
        info = request.match_info
        problem = request.app[PLANE].check_group(info["sub"], info["group"])
        if problem is not None:
            return problem
        namespace, rtype, versions = KINDS[kind]
        server = self.servers.get((kind, info["name"].lower()))
        if server is None:
            return arm_error(
                404,
                "ResourceNotFound",
                f"The Resource '{namespace}/{rtype}/{info['name']}' under resource group "
                f"'{info['group']}' was not found.",
            )
        problem = check_api_version(request, versions)
        return problem if problem is not None else server

    def _body(self, request: web.Request, server: Server) -> dict[str, Any]:
        namespace, rtype, _ = KINDS[server.kind]
        plane = request.app[PLANE]
        group = request.match_info.get("group", "rotation-local")
        return {
            "id": f"{GROUP.format(sub=plane.subscription_id, group=group)}/{namespace}/{rtype}/{server.name}",
            "name": server.name,
            "type": f"{namespace}/{rtype}",
            "location": "local",
            "properties": {
                "administratorLogin": server.administrator_login,
                "state": "Ready",
                "fullyQualifiedDomainName": "127.0.0.1",
            },
        }

    async def get(self, request: web.Request, kind: str) -> web.Response:
        found = self._server(request, kind)
        return found if isinstance(found, web.Response) else web.json_response(self._body(request, found))

    async def patch(self, request: web.Request, kind: str) -> web.Response:
        found = self._server(request, kind)
        if isinstance(found, web.Response):
            return found
        try:
            properties = (await request.json())["properties"]
            password = properties["administratorLoginPassword"]
            if not isinstance(password, str) or not password:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return arm_error(
                400, "InvalidRequestContent", "The request content was invalid: properties.administratorLoginPassword."
            )
        login = properties.get("administratorLogin")
        if login is not None and login != found.administrator_login:
            return arm_error(400, "InvalidParameterValue", "The administrator login cannot be changed.")
        found.password_updates += 1
        operation_id = str(uuid.uuid4())
        self.operations[operation_id] = Operation(asyncio.create_task(self._apply(found, password)), found)
        namespace, _, versions = KINDS[kind]
        base = f"{request.app[PLANE].base_url(request)}/subscriptions/{request.match_info['sub']}/providers/{namespace}"
        query = f"?api-version={versions[0]}"
        return web.Response(
            status=202,
            headers={
                "Azure-AsyncOperation": f"{base}/locations/local/azureAsyncOperation/{operation_id}{query}",
                "Location": f"{base}/locations/local/operationResults/{operation_id}{query}",
                "Retry-After": "1",
            },
        )

    async def _operation(self, request: web.Request) -> Operation | web.Response:
        operation = self.operations.get(request.match_info["operation"])
        if operation is None:
            return arm_error(404, "OperationNotFound", "The operation was not found.")
        operation.polls += 1
        return operation

    def _status(self, operation: Operation) -> str:
        # The first poll always sees the operation running, so every client really polls.
        if operation.polls == 1 or not operation.task.done():
            return "InProgress"
        return "Failed" if operation.task.exception() is not None else "Succeeded"

    async def async_operation(self, request: web.Request) -> web.Response:
        operation = await self._operation(request)
        if isinstance(operation, web.Response):
            return operation
        status = self._status(operation)
        body: dict[str, Any] = {
            "name": request.match_info["operation"],
            "status": status,
            "startTime": dt.datetime.now(dt.UTC).isoformat(),
        }
        if status == "Failed":
            body["error"] = {"code": "InternalServerError", "message": "The password could not be applied."}
        headers = {"Retry-After": "1"} if status == "InProgress" else None
        return web.json_response(body, headers=headers)

    async def operation_result(self, request: web.Request) -> web.Response:
        operation = await self._operation(request)
        if isinstance(operation, web.Response):
            return operation
        status = self._status(operation)
        if status == "InProgress":
            return web.Response(status=202, headers={"Retry-After": "1", "Location": str(request.url)})
        if status == "Failed":
            return arm_error(500, "InternalServerError", "The password could not be applied.")
        return web.json_response(self._body(request, operation.server))

    # --- control ------------------------------------------------------------------------------------

    async def create(self, request: web.Request) -> web.Response:
        kind, name = request.match_info["kind"], request.match_info["name"]
        if kind not in KINDS:
            return web.json_response({"error": f"kind must be one of {sorted(KINDS)}"}, status=400)
        body = await request.json()
        server = Server(kind, name, body["administratorLogin"])
        if kind == "sqlServers" and body.get("administratorLoginPassword"):
            await self._apply(server, body["administratorLoginPassword"])
        self.servers[(kind, name.lower())] = server
        return web.json_response({"created": name})

    async def describe(self, request: web.Request) -> web.Response:
        server = self.servers.get((request.match_info["kind"], request.match_info["name"].lower()))
        if server is None:
            return web.json_response({"error": "no such server"}, status=404)
        return web.json_response({"passwordUpdates": server.password_updates})

    async def sql_login(self, request: web.Request) -> web.Response:
        server = self.servers.get(("sqlServers", request.match_info["name"].lower()))
        body = await request.json()
        accepted = False
        if server is not None and server.password_hash is not None and body.get("login") == server.administrator_login:
            attempt = hashlib.pbkdf2_hmac("sha256", str(body.get("password", "")).encode(), server.salt, 1000)
            accepted = hmac.compare_digest(attempt, server.password_hash)
        return web.json_response({"accepted": accepted})

    def install(self, app: web.Application) -> None:
        for kind, (namespace, rtype, _) in KINDS.items():
            path = f"{GROUP}/{namespace}/{rtype}/{{name}}"
            app.router.add_get(path, functools.partial(self.get, kind=kind))
            app.router.add_patch(path, functools.partial(self.patch, kind=kind))
            locations = f"/subscriptions/{{sub}}/providers/{namespace}/locations/{{location}}"
            app.router.add_get(f"{locations}/azureAsyncOperation/{{operation}}", self.async_operation)
            app.router.add_get(f"{locations}/operationResults/{{operation}}", self.operation_result)
        app.router.add_put("/__control/servers/{kind}/{name}", self.create)
        app.router.add_get("/__control/servers/{kind}/{name}", self.describe)
        app.router.add_post("/__control/servers/sqlServers/{name}/login", self.sql_login)
