"""Rotators by name: the built-ins, imported only when first used (cold start), plus any a deployment
registers in code. Duplicate names are rejected; lookup takes a name or a class, so tests can bypass
discovery.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from .errors import ConfigurationError, UnknownRotatorError
from .rotator import ProviderContext, Rotator

BUILTIN_ROTATORS: Mapping[str, str] = {
    "postgres-role": "rotators.postgres_role:PostgresRoleRotator",
    "postgres-dual-user": "rotators.postgres_dual_user:PostgresDualUserRotator",
    "storage-account-key": "rotators.storage_account_key:StorageAccountKeyRotator",
    "postgres-flexible-admin": "rotators.postgres_flexible_admin:PostgresFlexibleAdminRotator",
    "azure-sql-admin": "rotators.azure_sql_admin:AzureSqlAdminRotator",
    "entra-app-secret": "rotators.entra_app_secret:EntraAppSecretRotator",
}


class RotatorRegistry:
    def __init__(self, builtins: Mapping[str, str] = BUILTIN_ROTATORS, context: ProviderContext | None = None) -> None:
        self._context = context or ProviderContext()
        self._paths: dict[str, str] = dict(builtins)
        self._classes: dict[str, type[Rotator]] = {}
        self._instances: dict[str, Rotator] = {}

    def register(self, rotator: type[Rotator]) -> None:
        name = rotator.name
        if name in self._paths or name in self._classes:
            raise ConfigurationError(f"a rotator named {name!r} is already registered")
        self._classes[name] = rotator

    def names(self) -> list[str]:
        return sorted({*self._paths, *self._classes})

    def get(self, rotator: str | type[Rotator]) -> Rotator:
        if isinstance(rotator, type):
            return rotator(self._context)
        if rotator not in self._instances:
            self._instances[rotator] = self._load(rotator)(self._context)
        return self._instances[rotator]

    def _load(self, name: str) -> type[Rotator]:
        if name in self._classes:
            return self._classes[name]
        path = self._paths.get(name)
        if path is None:
            raise UnknownRotatorError(f"unknown rotator {name!r}; known rotators: {', '.join(self.names())}")
        module_name, _, class_name = path.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        if not (isinstance(cls, type) and issubclass(cls, Rotator)) or cls.name != name:
            raise ConfigurationError(f"{path} is not the rotator {name!r}")
        return cls
