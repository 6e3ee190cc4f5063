"""The app settings the Bicep sets match what the code reads, in both delivery modes."""

from __future__ import annotations

from pathlib import Path

from infra.checks.rules import Resource, function_apps
from secret_rotation import settings

from .conftest import INFRA, REPO, Tree

# Settings the Functions host, azure-identity or Application Insights read themselves.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "AZURE_CLIENT_ID",
}


def _app(tree: Tree) -> Resource:
    apps = function_apps(tree.parsed)
    assert len(apps) == 1
    return apps[0]


def _settings(tree: Tree) -> dict[str, object]:
    raw = _app(tree).body["properties"]["siteConfig"]["appSettings"]
    assert isinstance(raw, list), "app settings must not depend on the delivery mode"
    return {s["name"]: s["value"] for s in raw}


def test_bicep_sets_every_setting_the_code_reads(trees: dict[str, Tree]) -> None:
    assert set(settings.APP_SETTING_NAMES) <= set(_settings(trees["original"]))


def test_bicep_sets_no_setting_the_code_and_platform_do_not_read(trees: dict[str, Tree]) -> None:
    extra = set(_settings(trees["original"])) - set(settings.APP_SETTING_NAMES) - PLATFORM_SETTINGS
    assert extra == set()


def test_constant_settings_match_code_defaults(trees: dict[str, Tree]) -> None:
    values = _settings(trees["original"])
    assert values[settings.KEYVAULT_API_VERSION] == settings.DEFAULT_KEYVAULT_API_VERSION
    main = trees["original"].parsed["main.bicep"]["ok"]
    assert main["variables"]["rotationQueueName"]["value"] == settings.DEFAULT_QUEUE_NAME


def test_both_delivery_modes_are_parameters(trees: dict[str, Tree]) -> None:
    main = trees["original"].parsed["main.bicep"]["ok"]
    mode = main["parameters"]["eventDeliveryMode"]
    allowed = [d["argument"] for d in mode["decorators"] if d["type"] == "allowed"]
    assert allowed == [["private", "public"]]
    assert mode["default"] == "private"
    # The queue subscription follows the mode; the app's inbound rules follow it too.
    assert main["modules"]["eventGrid"]["config"]["params"]["deliverToQueue"] == "isPrivate"
    assert main["modules"]["functionApp"]["config"]["params"]["isPrivate"] == "isPrivate"


def test_public_mode_subscribes_after_deploy() -> None:
    azure_yaml = (REPO / "azure.yaml").read_text(encoding="utf-8")
    assert "postdeploy:" in azure_yaml and "./infra/hooks/postdeploy.sh" in azure_yaml
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text(encoding="utf-8")
    assert "event-subscription-function.bicep" in hook
    assert '"${EVENT_DELIVERY_MODE:-private}" != "public"' in hook
    subscription = (INFRA / "modules" / "event-subscription-function.bicep").read_text(encoding="utf-8")
    assert "var functionName = 'on_secret_near_expiry'" in subscription
    function_app = REPO / "function_app.py"
    if function_app.exists():
        assert "def on_secret_near_expiry" in function_app.read_text(encoding="utf-8")


def test_hook_outputs_exist(trees: dict[str, Tree]) -> None:
    outputs = set(trees["original"].parsed["main.bicep"]["ok"]["outputs"])
    hook = (INFRA / "hooks" / "postdeploy.sh").read_text(encoding="utf-8")
    used = {name for name in outputs if "${" + name + "}" in hook}
    expected = {
        "AZURE_RESOURCE_GROUP",
        "EVENTGRID_SYSTEM_TOPIC_NAME",
        "FUNCTION_APP_NAME",
        "HOST_STORAGE_ACCOUNT_ID",
        "DEAD_LETTER_CONTAINER_NAME",
        "MAX_DELIVERY_ATTEMPTS",
        "EVENT_TTL_MINUTES",
    }
    assert expected <= used


def test_parameters_file_names_only_declared_parameters(trees: dict[str, Tree]) -> None:
    import json

    declared = set(trees["original"].parsed["main.bicep"]["ok"]["parameters"])
    given = set(json.loads(Path(INFRA / "main.parameters.json").read_text())["parameters"])
    assert given <= declared
