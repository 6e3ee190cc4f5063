"""Grants of the management-plane rotators (issue 7): each `managed*` parameter both allows its resources
(ROTATION_ALLOWED_SCOPES) and grants on exactly those resources, the custom roles hold exactly the
action sets the rules allow, and the deployment guide states every action the templates grant."""

from __future__ import annotations

from typing import Any

import pytest

from infra.checks.rules import CUSTOM_ROLES

from .conftest import REPO, Tree

# Parameter -> (module file granting on each listed resource, its parameter naming the resource).
TARGETS = {
    "managedStorageAccountIds": ("modules/target-storage.bicep", "storageAccountName"),
    "managedSqlServerIds": ("modules/target-sql.bicep", "sqlServerName"),
    "managedPostgresFlexibleServerIds": ("modules/target-postgres-flexible.bicep", "serverName"),
}


def _main(trees: dict[str, Tree]) -> dict[str, Any]:
    main: dict[str, Any] = trees["original"].parsed["main.bicep"]["ok"]
    return main


def _split_index(value: Any) -> tuple[str, int] | None:
    function = value.get("function", {}) if isinstance(value, dict) else {}
    if function.get("type") != "split":
        return None
    return function["parameters"]["input_string"], function["index"]


@pytest.mark.parametrize("parameter", sorted(TARGETS))
def test_each_listed_resource_gets_its_grants_in_its_own_group(trees: dict[str, Tree], parameter: str) -> None:
    module_file, name_param = TARGETS[parameter]
    calls = [
        m
        for m in _main(trees)["modules"].values()
        if m["detail"]["path"] == module_file and m["config"].get("loop_type")
    ]
    assert len(calls) == 1, module_file
    config = calls[0]["config"]
    loop = config["loop_type"]["detail"]
    assert loop["array_name"] == parameter
    item = loop["item_name"]
    body = config["config"]
    # Deployed to the resource's own subscription and resource group, parsed from its resource ID ...
    scope = body["scope"]["function"]
    assert scope["type"] == "resource_group"
    assert _split_index(scope["parameters"]["subscription_id"]) == (item, 2)
    assert _split_index(scope["parameters"]["resource_group_name"]) == (item, 4)
    # ... and naming that resource (the last segment of its ID).
    last = body["params"][name_param]["function"]
    assert last["type"] == "last"
    assert last["parameters"]["arg_1"]["function"]["parameters"]["input_string"] == item


def test_every_managed_resource_is_an_allowed_scope(trees: dict[str, Tree]) -> None:
    variables = _main(trees)["variables"]
    allowed = set(variables["allowedScopes"]["value"]["function"]["parameters"].values())
    assert set(TARGETS) | {"applicationScopes", "additionalAllowedScopes"} == allowed
    applications = variables["applicationScopes"]["value"]
    assert applications["loop_type"]["detail"]["array_name"] == "managedApplicationObjectIds"
    # The entra-app-secret rotator's scope of an application.
    assert applications["config"] == "/tenants/${tenant().tenantId}/applications/${objectId}"


def test_custom_roles_are_the_allowed_sets_and_exist_only_when_needed(trees: dict[str, Tree]) -> None:
    roles = {
        symbol: resource
        for symbol, resource in _main(trees)["resources"].items()
        if resource["type"] == "Microsoft.Authorization/roleDefinitions"
    }
    found = set()
    for symbol, role in roles.items():
        (permission,) = role["config"]["config"]["properties"]["permissions"]
        actions = frozenset(permission["actions"])
        assert actions in CUSTOM_ROLES, symbol
        found.add(actions)
        # Created only when a server of its kind is listed (roleDefinitions/write is then needed).
        condition = repr(role["config"]["condition"])
        assert "managedSqlServerIds" in condition or "managedPostgresFlexibleServerIds" in condition, symbol
    assert found == set(CUSTOM_ROLES)


def test_deployment_guide_states_every_granted_action() -> None:
    guide = (REPO / "docs" / "deployment.md").read_text(encoding="utf-8")
    for actions in CUSTOM_ROLES:
        for action in actions:
            assert f"`{action}`" in guide, action
    assert "`Application.ReadWrite.OwnedBy`" in guide
    assert "`Microsoft.Authorization/roleDefinitions/write`" in guide
