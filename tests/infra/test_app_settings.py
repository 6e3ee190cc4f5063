"""The app settings the Bicep sets match what the code reads, in both delivery modes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.checks import rules
from infra.checks.rules import Resource, function_apps
from secret_rotation import eventgrid_outcomes, replay, settings
from secret_rotation.outcomes import Status

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


def _dotted(value: object) -> object:
    """`a.b.c` for a Bicep property access, `f(x)` for a one-argument function call, else the value."""
    if isinstance(value, dict) and "operator" in value and value["operator"].get("type") == "property_accessor":
        operands = value["operator"]["operands"]
        return f"{_dotted(operands['operand_1'])}.{_dotted(operands['operand_2'])}"
    if isinstance(value, dict) and "function" in value:
        (argument,) = value["function"]["parameters"].values()
        return f"{value['function']['type']}({_dotted(argument)})"
    return value


def _template(tree: Tree, rel: str) -> dict[str, Any]:
    template: dict[str, Any] = tree.parsed[rel]["ok"]
    return template


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
    declared = set(trees["original"].parsed["main.bicep"]["ok"]["parameters"])
    given = set(json.loads(Path(INFRA / "main.parameters.json").read_text())["parameters"])
    assert given <= declared


# Each new setting: what the app setting is set from (module parameter), what main.bicep passes for it.
WIRING = {
    settings.LOCK_CONTAINER: ("lockContainerName", "storage.outputs.lockContainerName"),
    settings.OUTCOME_TOPIC_ENDPOINT: ("outcomeTopicEndpoint", "outcomeTopic.outputs.endpoint"),
    settings.SWEEP_SCHEDULE: ("sweepSchedule", "rotationSweepSchedule"),
    settings.STUCK_AFTER_MINUTES: ("string(stuckAfterMinutes)", "rotationStuckAfterMinutes"),
    settings.RETRY_BUDGET_SECONDS: ("string(retryBudgetSeconds)", "rotationRetryBudgetSeconds"),
}


def test_new_settings_are_wired_from_main(trees: dict[str, Tree]) -> None:
    values = {name: _dotted(value) for name, value in _settings(trees["original"]).items()}
    passed = trees["original"].parsed["main.bicep"]["ok"]["modules"]["functionApp"]["config"]["params"]
    for name, (setting_value, main_value) in WIRING.items():
        assert values[name] == setting_value, name
        module_param = setting_value.removeprefix("string(").removesuffix(")")
        assert _dotted(passed[module_param]) == main_value, name
    topic = _template(trees["original"], "modules/outcome-topic.bicep")
    assert _dotted(topic["outputs"]["endpoint"]["value"]) == "outcomeTopic.properties.endpoint"
    storage = _template(trees["original"], "modules/storage.bicep")
    assert _dotted(storage["outputs"]["lockContainerName"]["value"]) == "lockContainer.name"


def test_parameter_defaults_match_code_defaults(trees: dict[str, Tree]) -> None:
    parameters = trees["original"].parsed["main.bicep"]["ok"]["parameters"]
    assert parameters["rotationSweepSchedule"]["default"] == settings.DEFAULT_SWEEP_SCHEDULE
    assert parameters["rotationStuckAfterMinutes"]["default"] == settings.DEFAULT_STUCK_AFTER_MINUTES
    assert parameters["rotationRetryBudgetSeconds"]["default"] == settings.DEFAULT_RETRY_BUDGET_SECONDS
    # azd maps ROTATION_SWEEP_SCHEDULE onto the parameter, with the same default.
    given = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert (
        given["rotationSweepSchedule"]["value"] == "${ROTATION_SWEEP_SCHEDULE=" + settings.DEFAULT_SWEEP_SCHEDULE + "}"
    )


def test_storage_names_match_code_defaults(trees: dict[str, Tree]) -> None:
    variables = trees["original"].parsed["modules/storage.bicep"]["ok"]["variables"]
    assert variables["lockContainerName"]["value"] == settings.DEFAULT_LOCK_CONTAINER == rules.LOCK_CONTAINER
    assert variables["deadLetterContainerName"]["value"] == replay.DEFAULT_DEAD_LETTER_CONTAINER
    # The poison queue the replay tool drains is the one the host fills and the alert watches.
    assert variables["poisonQueueName"]["value"] == "${rotationQueueName}-poison"
    assert replay.poison_queue_name(settings.DEFAULT_QUEUE_NAME) == f"{settings.DEFAULT_QUEUE_NAME}-poison"


def test_outcome_topic_matches_what_the_code_publishes(trees: dict[str, Tree]) -> None:
    topic = _template(trees["original"], "modules/outcome-topic.bicep")
    failed = eventgrid_outcomes.EVENT_TYPE_PREFIX + Status.FAILED.value
    assert topic["variables"]["failedEventType"]["value"] == failed == rules.FAILED_OUTCOME_EVENT_TYPE
    # The code sends azure.eventgrid.EventGridEvent objects: the topic must accept the Event Grid schema.
    assert topic["resources"]["outcomeTopic"]["config"]["properties"]["inputSchema"] == "EventGridSchema"
    # The alert filters on the subscription that matches failed outcomes only.
    alerts = trees["original"].parsed["main.bicep"]["ok"]["modules"]["alerts"]["config"]["params"]
    assert _dotted(alerts["failedOutcomeSubscriptionName"]) == "outcomeTopic.outputs.failedSubscriptionName"
    assert _dotted(topic["outputs"]["failedSubscriptionName"]["value"]) == "failedSubscription.name"
