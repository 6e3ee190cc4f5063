"""Key Vault's error shape for the Key Vault double: `{"error": {"code", "message", "innererror": {"code"}}}`."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class KvError(Exception):
    """An error Key Vault would report as {"error": {"code", "message"}}."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return web.json_response({"error": error}, status=self.status, headers=headers)


def not_found(name: str, version: str = "") -> KvError:
    """Key Vault's 404 for a live secret (or version), worded as in recorded sessions."""
    ident = f"{name}/{version}" if version else name
    message = (
        f"A secret with (name/id) {ident} was not found in this key vault. If you recently deleted this secret "
        "you may be able to recover it using the correct recovery command. For help resolving this issue, "
        "please see https://go.microsoft.com/fwlink/?linkid=2125182"
    )
    return KvError(404, "SecretNotFound", message)


def deleted_not_found(name: str) -> KvError:
    """Key Vault's 404 for a name with no deleted secret (GET or purge of /deletedsecrets/{name})."""
    return KvError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


def bad(message: str) -> KvError:
    return KvError(400, "BadParameter", message)
