"""The registry's plugin rules: entry points merged with the built-ins through one lookup, only allowed
names loaded, one name one rotator, failures to load reported by name, and the registration hook."""

from __future__ import annotations

from importlib import metadata

import pytest

from secret_rotation.errors import ConfigurationError, UnknownRotatorError
from secret_rotation.registry import BUILTIN_ROTATORS, ENTRY_POINT_GROUP, RotatorRegistry
from secret_rotation.rotator import ApplyRequest, Credential, SingleCredentialRotator
from secret_rotation.settings import Settings
from secret_rotation.tags import RotationConfig

HERE = __name__


class FakePluginRotator(SingleCredentialRotator):
    name = "fake-plugin"

    def scope(self, config: RotationConfig) -> str:
        return "fake://plugin"

    async def apply(self, request: ApplyRequest) -> None:
        raise NotImplementedError

    async def accepts(self, config: RotationConfig, credential: Credential) -> bool:
        return False


class DeploymentRotator(FakePluginRotator):
    name = "deployment-own"


def register_rotators(registry: RotatorRegistry) -> None:
    """The registration hook a deployment's module provides (this module plays that part here)."""
    registry.register(DeploymentRotator)


def entry_point(name: str, target: str = f"{HERE}:FakePluginRotator") -> metadata.EntryPoint:
    return metadata.EntryPoint(name, target, ENTRY_POINT_GROUP)


def test_an_allowed_plugin_is_found_through_its_entry_point_next_to_the_builtins() -> None:
    registry = RotatorRegistry(allowed_plugins=["fake-plugin"], entry_points=[entry_point("fake-plugin")])
    assert isinstance(registry.get("fake-plugin"), FakePluginRotator)
    assert registry.names() == sorted(["fake-plugin", *BUILTIN_ROTATORS])


def test_an_installed_plugin_that_is_not_allowed_is_never_loaded() -> None:
    registry = RotatorRegistry(entry_points=[entry_point("fake-plugin", "no.such.module:Nothing")])
    assert "fake-plugin" not in registry.names()
    assert registry.refused() == {"fake-plugin": "an unknown package"}
    with pytest.raises(UnknownRotatorError, match=r"installed .* but not allowed: add it to ROTATION_ALLOWED_PLUGINS"):
        registry.get("fake-plugin")


@pytest.mark.parametrize(
    ("claims", "builtin"),
    [(["fake-plugin", "fake-plugin"], "fake-plugin"), (["postgres-role"], "postgres-role")],
    ids=["two packages", "a plugin and a built-in"],
)
def test_two_rotators_claiming_one_name_fail_when_the_registry_is_built(claims: list[str], builtin: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"rotator name '{builtin}' is claimed by .* never silently replaced"):
        RotatorRegistry(allowed_plugins=[builtin], entry_points=[entry_point(n) for n in claims])


def test_a_plugin_that_fails_to_import_is_reported_and_the_others_keep_working() -> None:
    registry = RotatorRegistry(allowed_plugins=["broken"], entry_points=[entry_point("broken", "no_such_pkg:Rotator")])
    with pytest.raises(ConfigurationError, match=r"plugin rotator 'broken' .* failed to load: ModuleNotFoundError"):
        registry.get("broken")
    assert registry.get("postgres-role").name == "postgres-role"
    assert list(registry.plugin_problems()) == ["broken"]


def test_an_entry_point_must_name_a_rotator_of_the_same_name() -> None:
    registry = RotatorRegistry(allowed_plugins=["other"], entry_points=[entry_point("other")])
    with pytest.raises(ConfigurationError, match="is not the rotator 'other'"):
        registry.get("other")


def test_an_allowed_name_no_package_provides_is_logged_and_unknown(caplog: pytest.LogCaptureFixture) -> None:
    registry = RotatorRegistry(allowed_plugins=["missing"], entry_points=[])
    assert "ROTATION_ALLOWED_PLUGINS lists rotator 'missing' but no installed package provides it" in caplog.text
    with pytest.raises(UnknownRotatorError, match="unknown rotator 'missing'"):
        registry.get("missing")


def test_code_registration_rejects_a_name_a_plugin_holds_and_works_as_a_decorator() -> None:
    registry = RotatorRegistry(allowed_plugins=["fake-plugin"], entry_points=[entry_point("fake-plugin")])
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.register(FakePluginRotator)
    assert registry.register(DeploymentRotator) is DeploymentRotator


def test_the_registration_module_setting_runs_the_deployments_hook() -> None:
    settings = Settings.from_env({"ROTATION_ALLOWED_VAULTS": "https://kv", "ROTATION_REGISTRATION_MODULE": HERE})
    assert isinstance(RotatorRegistry.from_settings(settings).get("deployment-own"), DeploymentRotator)
    for module, error in [
        ("no_such_module", "failed to import: ModuleNotFoundError"),
        ("json", "has no register_rotators"),
    ]:
        with pytest.raises(ConfigurationError, match=error):
            RotatorRegistry(entry_points=[]).run_registration_hook(module)


def test_the_example_plugin_is_installed_and_found_only_by_its_entry_point() -> None:
    """setup.sh installs examples/redis-acl-rotator with `pip install -e`; nothing here names its module."""
    assert RotatorRegistry().refused().get("redis-acl-user", "").startswith("redis-acl-rotator ")
    registry = RotatorRegistry(allowed_plugins=["redis-acl-user"])
    assert registry.plugin_problems() == {}
    assert type(registry.get("redis-acl-user")).__module__ == "redis_acl_rotator"
