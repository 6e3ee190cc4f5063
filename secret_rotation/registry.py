"""Rotators by name, on the path engine -> registry -> rotator: the built-ins, the plugins a setting allows,
and any a deployment registers in its own code.

Three sources, one lookup (the shape of xarray's backend registry):

- built-ins (`BUILTIN_ROTATORS`), always available, imported only when first used (cold start);
- plugins: installed packages that declare an entry point in the group `secret_rotation.rotators`
  (`redis-acl-user = "redis_acl_rotator:RedisAclUserRotator"`). Rotator code runs with the app's
  privileged identity, so only names listed in `ROTATION_ALLOWED_PLUGINS` are loaded: an installed
  dependency cannot register a rotator by being installed;
- code: `register(cls)` (also usable as a decorator), called by the deployment's own module named in
  `ROTATION_REGISTRATION_MODULE`, whose `register_rotators(registry)` runs when the service is built.

One name, one rotator: a second claim fails when the registry is built, never a silent override. A plugin
that cannot be imported is reported by name, package and cause when it is first used (one clear
outcome), without stopping the other rotators. Lookup takes a name or a class, so tests bypass discovery.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping
from importlib import metadata
from typing import TypeVar

from .errors import ConfigurationError, UnknownRotatorError
from .rotator import ProviderContext, Rotator
from .settings import ALLOWED_PLUGINS, REGISTRATION_MODULE, Settings

logger = logging.getLogger("secret_rotation")

ENTRY_POINT_GROUP = "secret_rotation.rotators"
REGISTRATION_HOOK = "register_rotators"

BUILTIN_ROTATORS: Mapping[str, str] = {
    "postgres-role": "rotators.postgres_role:PostgresRoleRotator",
    "postgres-dual-user": "rotators.postgres_dual_user:PostgresDualUserRotator",
}

R = TypeVar("R", bound=type[Rotator])


def _package(entry_point: metadata.EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "an unknown package"


class RotatorRegistry:
    def __init__(
        self,
        builtins: Mapping[str, str] = BUILTIN_ROTATORS,
        context: ProviderContext | None = None,
        *,
        allowed_plugins: Collection[str] = (),
        entry_points: Iterable[metadata.EntryPoint] | None = None,
    ) -> None:
        """`entry_points` defaults to the installed ones of `ENTRY_POINT_GROUP` (tests pass their own)."""
        self._context = context or ProviderContext()
        self._paths: dict[str, str] = dict(builtins)
        self._classes: dict[str, type[Rotator]] = {}
        self._instances: dict[str, Rotator] = {}
        self._plugins: dict[str, metadata.EntryPoint] = {}
        self._refused: dict[str, metadata.EntryPoint] = {}
        found = metadata.entry_points(group=ENTRY_POINT_GROUP) if entry_points is None else entry_points
        self._add_plugins(list(found), set(allowed_plugins))

    @classmethod
    def from_settings(cls, settings: Settings, context: ProviderContext | None = None) -> RotatorRegistry:
        """The app's registry: built-ins, allowed plugins, then the deployment's registration hook."""
        registry = cls(context=context, allowed_plugins=settings.allowed_plugins)
        if settings.registration_module:
            registry.run_registration_hook(settings.registration_module)
        return registry

    def _add_plugins(self, found: list[metadata.EntryPoint], allowed: set[str]) -> None:
        claims: dict[str, list[metadata.EntryPoint]] = {}
        for entry_point in found:
            claims.setdefault(entry_point.name, []).append(entry_point)
        for name, entry_points in claims.items():
            if name not in allowed:
                self._refused[name] = entry_points[0]
                continue
            packages = [_package(e) for e in entry_points]
            if name in self._paths:
                packages.insert(0, "the built-in rotators")
            if len(packages) > 1:
                raise ConfigurationError(
                    f"rotator name {name!r} is claimed by {' and by '.join(packages)} "
                    f"(entry-point group {ENTRY_POINT_GROUP}); uninstall one or rename it, "
                    "a rotator is never silently replaced"
                )
            self._plugins[name] = entry_points[0]
        for name in sorted(allowed - set(claims) - set(self._paths)):
            logger.warning(
                "%s lists rotator %r but no installed package provides it (entry-point group %s)",
                ALLOWED_PLUGINS,
                name,
                ENTRY_POINT_GROUP,
            )

    def run_registration_hook(self, module_name: str) -> None:
        """Imports the deployment's module and calls its `register_rotators(registry)`."""
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise ConfigurationError(
                f"{REGISTRATION_MODULE} names module {module_name!r}, which failed to import: "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc
        hook: Callable[[RotatorRegistry], object] | None = getattr(module, REGISTRATION_HOOK, None)
        if not callable(hook):
            raise ConfigurationError(f"module {module_name!r} ({REGISTRATION_MODULE}) has no {REGISTRATION_HOOK}()")
        hook(self)

    def register(self, rotator: R) -> R:
        """Adds a rotator class under its `name`; returns it, so it also works as a class decorator."""
        if not (isinstance(rotator, type) and issubclass(rotator, Rotator)):
            raise ConfigurationError(f"{rotator!r} is not a Rotator subclass")
        name = rotator.name
        if name in self._paths or name in self._classes or name in self._plugins:
            raise ConfigurationError(f"a rotator named {name!r} is already registered; it is never silently replaced")
        self._classes[name] = rotator
        return rotator

    def names(self) -> list[str]:
        """Every rotator this registry can load (refused plugins are not among them)."""
        return sorted({*self._paths, *self._classes, *self._plugins})

    def refused(self) -> dict[str, str]:
        """Installed plugins left out because `ROTATION_ALLOWED_PLUGINS` does not name them: name -> package."""
        return {name: _package(entry_point) for name, entry_point in sorted(self._refused.items())}

    def plugin_problems(self) -> dict[str, str]:
        """Loads every allowed plugin now: name -> why it cannot be used (for a dry run such as `plan`)."""
        problems = {}
        for name in sorted(self._plugins):
            try:
                self._load(name)
            except ConfigurationError as exc:
                problems[name] = str(exc)
        return problems

    def get(self, rotator: str | type[Rotator]) -> Rotator:
        if isinstance(rotator, type):
            return rotator(self._context)
        if rotator not in self._instances:
            self._instances[rotator] = self._load(rotator)(self._context)
        return self._instances[rotator]

    def _load(self, name: str) -> type[Rotator]:
        if name in self._classes:
            return self._classes[name]
        if name in self._plugins:
            return self._load_plugin(name, self._plugins[name])
        path = self._paths.get(name)
        if path is None:
            raise UnknownRotatorError(self._unknown(name))
        module_name, _, class_name = path.partition(":")
        return self._checked(name, getattr(importlib.import_module(module_name), class_name), path)

    def _load_plugin(self, name: str, entry_point: metadata.EntryPoint) -> type[Rotator]:
        where = f"plugin rotator {name!r} ({_package(entry_point)}, entry point {entry_point.value})"
        try:
            loaded = entry_point.load()
        except Exception as exc:
            # Reported, not fatal: the other rotators keep working while this one is fixed.
            raise ConfigurationError(f"{where} failed to load: {exc.__class__.__name__}: {exc}") from exc
        return self._checked(name, loaded, where)

    @staticmethod
    def _checked(name: str, loaded: object, where: str) -> type[Rotator]:
        if not (isinstance(loaded, type) and issubclass(loaded, Rotator)) or loaded.name != name:
            raise ConfigurationError(f"{where} is not the rotator {name!r} (a Rotator subclass with name = {name!r})")
        return loaded

    def _unknown(self, name: str) -> str:
        refused = self._refused.get(name)
        if refused is not None:
            return (
                f"rotator {name!r} is installed ({_package(refused)}) but not allowed: "
                f"add it to {ALLOWED_PLUGINS} to let this app load it"
            )
        return f"unknown rotator {name!r}; known rotators: {', '.join(self.names())}"
