"""What this deployment may touch: vaults by URL, providers by scope (ARM resource IDs or URLs).

A scope matches an allowed entry when it equals it or lies below it at a path boundary, so
`/subscriptions/s/resourceGroups/app` allows that group's resources and nothing in `.../app2`.
"""

from __future__ import annotations

from .errors import ScopeError


def _within(scope: str, allowed: str) -> bool:
    scope, allowed = scope.rstrip("/").lower(), allowed.rstrip("/").lower()
    return scope == allowed or scope.startswith(allowed + "/")


class Scopes:
    def __init__(self, allowed_vaults: tuple[str, ...], allowed_scopes: tuple[str, ...]) -> None:
        self._vaults = tuple(v.rstrip("/").lower() for v in allowed_vaults)
        self._scopes = allowed_scopes

    def check_vault(self, vault_url: str) -> None:
        if vault_url.rstrip("/").lower() not in self._vaults:
            raise ScopeError(f"vault {vault_url} is not in ROTATION_ALLOWED_VAULTS")

    def check_provider(self, secret_name: str, scope: str) -> None:
        if not any(_within(scope, allowed) for allowed in self._scopes):
            raise ScopeError(f"secret {secret_name}: provider {scope} is outside ROTATION_ALLOWED_SCOPES")
