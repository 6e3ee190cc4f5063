"""Rules over pycep-parser JSON for what checkov does not check (or cannot evaluate) in infra/.

Each rule returns findings; an empty list means the templates comply. The tests run these rules on
the real templates (no finding) and on deliberately weakened copies (the rule must fire).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Json = Any

#: Built-in role definition IDs this project may assign, from Microsoft's Azure built-in roles
#: reference (role-based-access-control/built-in-roles), with the resource types each may be scoped to.
ALLOWED_BUILTIN_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": ("Key Vault Secrets Officer", ("Microsoft.KeyVault/vaults",)),
    "81a9662b-bebf-436f-a333-f67b29880f12": (
        "Storage Account Key Operator Service Role",
        ("Microsoft.Storage/storageAccounts",),
    ),
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": ("Storage Blob Data Owner", ("Microsoft.Storage/storageAccounts",)),
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": (
        "Storage Queue Data Contributor",
        ("Microsoft.Storage/storageAccounts",),
    ),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": (
        "Storage Table Data Contributor",
        ("Microsoft.Storage/storageAccounts",),
    ),
    "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a": (
        "Storage Queue Data Message Sender",
        ("Microsoft.Storage/storageAccounts/queueServices/queues",),
    ),
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": (
        "Storage Blob Data Contributor",
        ("Microsoft.Storage/storageAccounts/blobServices/containers",),
    ),
    "3913510d-42f4-4e42-8a64-420c390055eb": ("Monitoring Metrics Publisher", ("Microsoft.Insights/components",)),
    # storage-account-key reads the account's blob endpoint; Reader on the account only (never wider).
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": ("Reader", ("Microsoft.Storage/storageAccounts",)),
    "d5a91429-5739-47e2-a06b-3470a27159e7": ("EventGrid Data Sender", ("Microsoft.EventGrid/topics",)),
}

#: Broad roles that must never appear anywhere in the templates (same reference).
FORBIDDEN_ROLES: dict[str, str] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
}

#: Scope kinds of an assignment declared without `scope` in a module (the module's target scope).
RESOURCE_GROUP_SCOPE = "resourceGroup"
SUBSCRIPTION_SCOPE = "subscription"

#: The custom roles the templates may define, as exact action sets, with where each may be assigned:
#: read and write a database server (its administrator password) on that server only, and read the
#: status of the server update (a long-running operation) where the provider's polling URLs live.
#: Action strings: Microsoft's resource provider operations reference (Azure permissions for Databases);
#: main.bicep explains the SQL wildcard and the scope of each polling URL.
CUSTOM_ROLES: dict[frozenset[str], tuple[str, ...]] = {
    frozenset({"Microsoft.Sql/servers/read", "Microsoft.Sql/servers/write"}): ("Microsoft.Sql/servers",),
    frozenset({"Microsoft.Sql/locations/*/read"}): (RESOURCE_GROUP_SCOPE,),
    frozenset({"Microsoft.DBforPostgreSQL/flexibleServers/read", "Microsoft.DBforPostgreSQL/flexibleServers/write"}): (
        "Microsoft.DBforPostgreSQL/flexibleServers",
    ),
    frozenset(
        {
            "Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read",
            "Microsoft.DBforPostgreSQL/locations/operationResults/read",
        }
    ): (SUBSCRIPTION_SCOPE,),
}

#: Event types the subscriptions must deliver, and no other: SecretNewVersionCreated would make the
#: service trigger itself, since it writes new versions.
ROTATION_EVENT_TYPES = frozenset({"Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired"})

#: The one outcome event type the outcome topic's subscription (and so its alert) may match
#: (secret_rotation/eventgrid_outcomes.py: EVENT_TYPE_PREFIX + Status.FAILED; tests/infra compares them).
FAILED_OUTCOME_EVENT_TYPE = "SecretRotation.SecretRotationFailed"
#: Log categories the outcome topic must send to Log Analytics (publish audit, publish and delivery failures).
TOPIC_LOG_CATEGORIES = frozenset({"DataPlaneRequests", "PublishFailures", "DeliveryFailures"})
EVENT_GRID_DATA_SENDER = "d5a91429-5739-47e2-a06b-3470a27159e7"

#: Container of the per-secret lock blobs (secret_rotation/settings.py DEFAULT_LOCK_CONTAINER).
LOCK_CONTAINER = "rotation-locks"
#: Blob data roles that can create blobs and take leases on them (built-in roles reference).
BLOB_WRITE_ROLES = frozenset({"b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"})

#: How main.bicep refers to the app identity's principal ID (modules/identity.bicep).
APP_IDENTITY_PRINCIPAL = "identity.outputs.principalId"

CUSTOM_TOPIC = "Microsoft.EventGrid/topics"
SYSTEM_TOPIC = "Microsoft.EventGrid/systemTopics"
CONTAINER = "Microsoft.Storage/storageAccounts/blobServices/containers"
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"
PROVIDERS_ROLE_ASSIGNMENT = "/providers/roleAssignments"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


@dataclass(frozen=True)
class Finding:
    rule: str
    file: str
    message: str


@dataclass(frozen=True)
class Resource:
    file: str
    symbol: str
    type: str
    existing: bool
    body: dict[str, Any]


Parsed = dict[str, dict[str, Any]]  # relative path -> {"ok": json} | {"error": message}


def _body(resource: Json) -> dict[str, Any]:
    """The resource's properties, under any `if (...)` condition or `for` loop wrapper."""
    config = resource.get("config", {})
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config if isinstance(config, dict) else {}


def _templates(parsed: Parsed) -> Iterator[tuple[str, Json]]:
    for rel, entry in sorted(parsed.items()):
        if "ok" in entry:
            yield rel, entry["ok"]


def resources(parsed: Parsed) -> list[Resource]:
    found = []
    for rel, template in _templates(parsed):
        for symbol, res in (template.get("resources") or {}).items():
            found.append(Resource(rel, symbol, res["type"], bool(res.get("existing")), _body(res)))
    return found


def _get(node: Json, *path: str) -> Json:
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _variables(parsed: Parsed, rel: str) -> dict[str, Json]:
    template = parsed[rel].get("ok") or {}
    return {name: var.get("value") for name, var in (template.get("variables") or {}).items()}


def _resolve(parsed: Parsed, rel: str, value: Json) -> Json:
    """Replace a bare variable name by its value (one level is all the templates use)."""
    if isinstance(value, str):
        variables = _variables(parsed, rel)
        if value in variables:
            return variables[value]
    return value


def _conditional(value: Json) -> tuple[Json, Json, Json] | None:
    if _get(value, "operator", "type") == "conditional":
        ops = value["operator"]["operands"]
        return ops.get("condition"), ops.get("true_value"), ops.get("false_value")
    return None


def _mentions(value: Json, name: str) -> bool:
    return name in repr(value)


# --- storage ---------------------------------------------------------------------------------------


def check_storage(parsed: Parsed) -> list[Finding]:
    findings = []
    for res in resources(parsed):
        props = res.body.get("properties") or {}
        if res.type == "Microsoft.Storage/storageAccounts" and not res.existing:
            if props.get("allowSharedKeyAccess") is not False:
                findings.append(
                    Finding("STORAGE-SHARED-KEY", res.file, f"{res.symbol}: allowSharedKeyAccess must be false")
                )
            if props.get("allowBlobPublicAccess") is not False:
                findings.append(
                    Finding("STORAGE-PUBLIC-BLOB", res.file, f"{res.symbol}: allowBlobPublicAccess must be false")
                )
            if props.get("minimumTlsVersion") != "TLS1_2" or props.get("supportsHttpsTrafficOnly") is not True:
                findings.append(Finding("STORAGE-TLS", res.file, f"{res.symbol}: HTTPS only with TLS 1.2 minimum"))
            if _get(props, "networkAcls", "defaultAction") != "Deny":
                findings.append(
                    Finding("STORAGE-NETWORK", res.file, f"{res.symbol}: networkAcls.defaultAction must be Deny")
                )
        container = res.type == "Microsoft.Storage/storageAccounts/blobServices/containers"
        if container and not res.existing and props.get("publicAccess") != "None":
            findings.append(
                Finding("STORAGE-PUBLIC-BLOB", res.file, f"{res.symbol}: container publicAccess must be None")
            )
    return findings


# --- key vault -------------------------------------------------------------------------------------


def _public_access_closed(value: Json, opener: str) -> bool:
    """'Disabled', or a conditional that is 'Disabled' unless `opener` (the deployer IP) is given."""
    if value == "Disabled":
        return True
    cond = _conditional(value)
    if cond is None:
        return False
    condition, when_true, when_false = cond
    return (
        when_true == "Disabled"
        and when_false == "Enabled"
        and _get(condition, "function", "type") == "empty"
        and _mentions(condition, opener)
    )


def check_key_vault(parsed: Parsed) -> list[Finding]:
    findings = []
    vaults = [r for r in resources(parsed) if r.type == "Microsoft.KeyVault/vaults" and not r.existing]
    if not vaults:
        findings.append(Finding("KV-RBAC", "-", "no Key Vault is declared"))
    for res in vaults:
        props = res.body.get("properties") or {}
        if props.get("enableRbacAuthorization") is not True or props.get("accessPolicies"):
            findings.append(
                Finding(
                    "KV-RBAC", res.file, f"{res.symbol}: RBAC authorization on, no access policies (ignored by RBAC)"
                )
            )
        if (
            props.get("enableSoftDelete") is not True
            or props.get("softDeleteRetentionInDays") != 90
            or props.get("enablePurgeProtection") is not True
        ):
            findings.append(
                Finding("KV-RECOVERY", res.file, f"{res.symbol}: soft delete for 90 days and purge protection required")
            )
        acls = props.get("networkAcls") or {}
        if acls.get("defaultAction") != "Deny" or acls.get("bypass") != "AzureServices":
            findings.append(Finding("KV-NETWORK", res.file, f"{res.symbol}: firewall Deny with AzureServices bypass"))
        if not _public_access_closed(props.get("publicNetworkAccess"), "deployerIpAddress"):
            findings.append(
                Finding(
                    "KV-NETWORK", res.file, f"{res.symbol}: public network access must be Disabled (or deployer-only)"
                )
            )
    return findings


def _logged_categories(all_resources: list[Resource], target: Resource) -> set[str]:
    """Log categories that diagnostic settings on `target` (same file) send to a Log Analytics workspace."""
    categories: set[str] = set()
    for res in all_resources:
        if res.type != "Microsoft.Insights/diagnosticSettings" or res.file != target.file:
            continue
        if res.body.get("scope") != target.symbol:
            continue
        props = res.body.get("properties") or {}
        if props.get("workspaceId"):
            categories |= {str(log.get("category")) for log in props.get("logs") or [] if log.get("enabled") is True}
    return categories


def check_vault_diagnostics(parsed: Parsed) -> list[Finding]:
    all_resources = resources(parsed)
    for target in all_resources:
        if target.type == "Microsoft.KeyVault/vaults" and "AuditEvent" in _logged_categories(all_resources, target):
            return []
    return [Finding("KV-DIAGNOSTICS", "-", "no diagnostic setting sends the vault's AuditEvent to Log Analytics")]


def _expand(parsed: Parsed, rel: str, value: Json, depth: int = 5) -> Json:
    """`value` with every bare variable name in it replaced by the variable's value, a few levels deep."""
    if depth == 0:
        return value
    if isinstance(value, str):
        variables = _variables(parsed, rel)
        return _expand(parsed, rel, variables[value], depth - 1) if value in variables else value
    if isinstance(value, dict):
        return {key: _expand(parsed, rel, item, depth) for key, item in value.items()}
    if isinstance(value, list):
        return [_expand(parsed, rel, item, depth) for item in value]
    return value


def check_vault_name(parsed: Parsed) -> list[Finding]:
    """A new vault's name changes when the environment is created again: it is seeded with the app
    identity's principal ID, which `azd down` deletes. A name derived only from the environment name
    collides with the soft-deleted, purge-protected vault of the previous incarnation."""
    findings = []
    for caller, body in _module_calls(parsed, "modules/keyvault.bicep"):
        name = _expand(parsed, caller, _get(body, "params", "name"))
        if APP_IDENTITY_PRINCIPAL not in repr(name):
            findings.append(
                Finding("KV-NAME-REUSE", caller, f"the new vault's name must be seeded with {APP_IDENTITY_PRINCIPAL}")
            )
    return findings


def check_vault_admin(parsed: Parsed) -> list[Finding]:
    """The secrets administrator gets a role on an existing (possibly shared) vault only when asked for:
    the value passed to keyvault-access.bicep is '' unless grantSecretsAdminOnExistingVault (default
    false) or the vault is new."""
    findings = []
    for caller, body in _module_calls(parsed, "modules/keyvault-access.bicep"):
        cond = _conditional(_get(body, "params", "secretsAdminPrincipalId"))
        condition = _resolve(parsed, caller, cond[0]) if cond else None
        switch = (_get(parsed[caller].get("ok"), "parameters", "grantSecretsAdminOnExistingVault") or {}).get("default")
        if (
            cond is None
            or "" not in (cond[1], cond[2])
            or not all(_mentions(condition, name) for name in ("grantSecretsAdminOnExistingVault", "useExistingVault"))
            or switch is not False
        ):
            findings.append(
                Finding(
                    "KV-ADMIN-EXISTING",
                    caller,
                    "secretsAdminPrincipalId reaches an existing vault only with grantSecretsAdminOnExistingVault "
                    "(default false)",
                )
            )
    return findings


# --- event grid ------------------------------------------------------------------------------------


def _check_subscription(res: Resource) -> tuple[list[Finding], set[str]]:
    """Findings for one event subscription, and the endpoint types it delivers to."""
    findings = []
    destinations: set[str] = set()
    props = res.body.get("properties") or {}

    def fail(rule: str, message: str) -> None:
        findings.append(Finding(rule, res.file, f"{res.symbol}: {message}"))

    types = _get(props, "filter", "includedEventTypes")
    if not isinstance(types, list) or set(types) != ROTATION_EVENT_TYPES or len(types) != len(set(types)):
        fail("EG-EVENT-TYPES", "deliver exactly SecretNearExpiry and SecretExpired")
    if _get(props, "filter", "advancedFilters") or _get(props, "filter", "subjectBeginsWith"):
        fail("EG-EVENT-TYPES", "no filters that drop rotation events")
    retry = props.get("retryPolicy") or {}
    if not retry.get("maxDeliveryAttempts") or not retry.get("eventTimeToLiveInMinutes"):
        fail("EG-RETRY", "explicit retryPolicy required")
    dead = props.get("deadLetterWithResourceIdentity") or {}
    if (
        _get(dead, "identity", "type") != "SystemAssigned"
        or _get(dead, "deadLetterDestination", "endpointType") != "StorageBlob"
        or not _get(dead, "deadLetterDestination", "properties", "blobContainerName")
        or props.get("deadLetterDestination")
    ):
        fail("EG-DEADLETTER", "dead-letter to a blob container via the topic identity")
    with_identity = props.get("deliveryWithResourceIdentity")
    if with_identity is not None:
        if _get(with_identity, "identity", "type") != "SystemAssigned":
            fail("EG-IDENTITY", "deliver with the topic's identity")
        destinations.add(str(_get(with_identity, "destination", "endpointType")))
    plain = _get(props, "destination", "endpointType")
    if plain == "StorageQueue":
        fail("EG-IDENTITY", "queue delivery must use the topic identity")
    if plain:
        destinations.add(str(plain))
    return findings, destinations


def check_system_topic_region(parsed: Parsed) -> list[Finding]:
    """The vault's system topic is created in the vault's region (an existing vault's need not be the
    deployment's): the caller passes the location output of a module that reads it from the vault."""
    findings = []
    for rel, template in _templates(parsed):
        for symbol, res in (template.get("resources") or {}).items():
            body = _body(res)
            if res["type"] != SYSTEM_TOPIC or res.get("existing"):
                continue
            location_param = str(body.get("location"))
            for caller, call in _module_calls(parsed, rel):
                passed = _dotted(_get(call, "params", location_param))
                if not _is_vault_location(parsed, caller, passed):
                    findings.append(
                        Finding("EG-TOPIC-REGION", caller, f"{symbol} must be created in the vault's region")
                    )
    return findings


def _is_vault_location(parsed: Parsed, caller: str, passed: Json) -> bool:
    """`passed` is `<module>.outputs.<o>` and that module's output `o` is `<vault>.location`."""
    parts = passed.split(".") if isinstance(passed, str) else []
    if len(parts) != 3 or parts[1] != "outputs":
        return False
    module = ((parsed[caller].get("ok") or {}).get("modules") or {}).get(parts[0])
    target = _get(module, "detail", "path")
    base = caller.rsplit("/", 1)[0] if "/" in caller else ""
    rel = f"{base}/{target}" if base else str(target)
    template = (parsed.get(rel) or {}).get("ok") or {}
    output = _dotted(_get(template, "outputs", parts[2], "value"))
    vaults = {s for s, r in (template.get("resources") or {}).items() if r["type"] == "Microsoft.KeyVault/vaults"}
    return isinstance(output, str) and output.endswith(".location") and output.split(".")[0] in vaults


def check_event_grid(parsed: Parsed) -> list[Finding]:
    findings = []
    destinations: set[str] = set()
    for res in resources(parsed):
        topic = res.type in (SYSTEM_TOPIC, CUSTOM_TOPIC) and not res.existing
        if topic and _get(res.body, "identity", "type") != "SystemAssigned":
            findings.append(Finding("EG-IDENTITY", res.file, f"{res.symbol}: the topic needs its managed identity"))
        if res.type == "Microsoft.EventGrid/systemTopics/eventSubscriptions":
            sub_findings, sub_destinations = _check_subscription(res)
            findings += sub_findings
            destinations |= sub_destinations
    for mode, endpoint in (("private", "StorageQueue"), ("public", "AzureFunction")):
        if endpoint not in destinations:
            findings.append(Finding("EG-MODES", "-", f"no {endpoint} subscription for the {mode} delivery mode"))
    return findings


# --- outcome topic ---------------------------------------------------------------------------------


def _role_guid(parsed: Parsed, res: Resource) -> str | None:
    """The built-in role GUID an assignment grants, lower-cased, when it names one literally or by variable."""
    role = _resolve(parsed, res.file, _role_id_argument(_get(res.body, "properties", "roleDefinitionId")))
    return role.lower() if isinstance(role, str) and _GUID.fullmatch(role) else None


def _assignments(all_resources: list[Resource]) -> list[Resource]:
    return [
        r
        for r in all_resources
        if (r.type == ROLE_ASSIGNMENT or r.type.endswith(PROVIDERS_ROLE_ASSIGNMENT)) and not r.existing
    ]


def _dotted(value: Json) -> Json:
    """`a.b.c` for a Bicep property access such as `identity.outputs.principalId`, else the value."""
    operands = _get(value, "operator", "operands")
    if _get(value, "operator", "type") == "property_accessor" and isinstance(operands, dict):
        return f"{_dotted(operands.get('operand_1'))}.{_dotted(operands.get('operand_2'))}"
    return value


def _is_app_identity(parsed: Parsed, rel: str, principal: Json) -> bool:
    """The principal is a parameter of `rel` that every caller sets to the app identity's principal ID."""
    params = set((parsed[rel].get("ok") or {}).get("parameters") or {})
    if not isinstance(principal, str) or principal not in params:
        return False
    passed = _module_param_values(parsed, rel, principal)
    return bool(passed) and all(_dotted(value) == APP_IDENTITY_PRINCIPAL for value in passed)


def _has_private_endpoint(parsed: Parsed, target: Resource, group_id: str) -> bool:
    template = parsed[target.file].get("ok") or {}
    for module in (template.get("modules") or {}).values():
        params = _get(_body(module), "params") or {}
        pointed = _get(params, "targetResourceId", "operator", "operands")
        if (
            params.get("groupId") == group_id
            and isinstance(pointed, dict)
            and pointed.get("operand_1") == target.symbol
            and pointed.get("operand_2") == "id"
        ):
            return True
    return False


def _check_topic_roles(parsed: Parsed, topic: Resource, assignments: list[Resource]) -> list[Finding]:
    """On the topic: EventGrid Data Sender for a principal passed in (the app identity), nothing else."""
    findings = []
    on_topic = [a for a in assignments if a.file == topic.file and a.body.get("scope") == topic.symbol]
    senders = [a for a in on_topic if _role_guid(parsed, a) == EVENT_GRID_DATA_SENDER]
    if not any(_is_app_identity(parsed, a.file, _get(a.body, "properties", "principalId")) for a in senders):
        findings.append(
            Finding("EG-TOPIC-ROLE", topic.file, f"{topic.symbol}: the app identity needs EventGrid Data Sender here")
        )
    for other in on_topic:
        if other not in senders:
            findings.append(
                Finding("EG-TOPIC-ROLE", other.file, f"{other.symbol}: only EventGrid Data Sender on {topic.symbol}")
            )
    return findings


def _check_outcome_subscription(parsed: Parsed, res: Resource) -> list[Finding]:
    findings = []

    def fail(rule: str, message: str) -> None:
        findings.append(Finding(rule, res.file, f"{res.symbol}: {message}"))

    props = res.body.get("properties") or {}
    types = [_resolve(parsed, res.file, t) for t in _get(props, "filter", "includedEventTypes") or []]
    if types != [FAILED_OUTCOME_EVENT_TYPE] or _get(props, "filter", "advancedFilters"):
        fail("EG-OUTCOME-FAILED", f"match exactly {FAILED_OUTCOME_EVENT_TYPE} (the alert counts its matches)")
    retry = props.get("retryPolicy") or {}
    if not retry.get("maxDeliveryAttempts") or not retry.get("eventTimeToLiveInMinutes"):
        fail("EG-RETRY", "explicit retryPolicy required")
    with_identity = props.get("deliveryWithResourceIdentity")
    if with_identity is not None and _get(with_identity, "identity", "type") != "SystemAssigned":
        fail("EG-IDENTITY", "deliver with the topic's identity")
    if _get(props, "destination", "endpointType") == "StorageQueue":
        fail("EG-IDENTITY", "queue delivery must use the topic identity")
    return findings


def _failed_outcome_alert(all_resources: list[Resource]) -> bool:
    """A metric alert on a custom topic's matched events, filtered by event subscription."""
    for res in all_resources:
        if res.type != "Microsoft.Insights/metricAlerts":
            continue
        for criterion in _get(res.body, "properties", "criteria", "allOf") or []:
            dimensions = {
                str(d.get("name")) for d in criterion.get("dimensions") or [] if d.get("operator") == "Include"
            }
            if (
                criterion.get("metricNamespace") == CUSTOM_TOPIC
                and criterion.get("metricName") == "MatchedEventCount"
                and "EventSubscriptionName" in dimensions
            ):
                return True
    return False


def _check_topic(parsed: Parsed, topic: Resource, all_resources: list[Resource]) -> list[Finding]:
    findings = []

    def fail(rule: str, message: str) -> None:
        findings.append(Finding(rule, topic.file, f"{topic.symbol}: {message}"))

    props = topic.body.get("properties") or {}
    if props.get("disableLocalAuth") is not True:
        fail("EG-TOPIC-AUTH", "disableLocalAuth must be true (Entra ID only, no keys or SAS)")
    if props.get("publicNetworkAccess") != "Disabled" or props.get("inboundIpRules"):
        fail("EG-TOPIC-NETWORK", "public network access Disabled, no inbound IP rules")
    if not _has_private_endpoint(parsed, topic, "topic"):
        fail("EG-TOPIC-NETWORK", "needs a private endpoint (groupId topic)")
    if props.get("minimumTlsVersionAllowed") != "1.2":
        fail("EG-TOPIC-TLS", "minimumTlsVersionAllowed must be 1.2")
    missing = TOPIC_LOG_CATEGORIES - _logged_categories(all_resources, topic)
    if missing:
        fail("EG-TOPIC-DIAGNOSTICS", f"logs not sent to Log Analytics: {sorted(missing)}")
    return findings + _check_topic_roles(parsed, topic, _assignments(all_resources))


def check_outcome_topic(parsed: Parsed) -> list[Finding]:
    findings = []
    all_resources = resources(parsed)
    assignments = _assignments(all_resources)
    topics = [r for r in all_resources if r.type == CUSTOM_TOPIC and not r.existing]
    if not topics:
        findings.append(Finding("EG-TOPIC-AUTH", "-", "no outcome topic is declared"))
    for topic in topics:
        findings += _check_topic(parsed, topic, all_resources)
    topic_symbols = {(t.file, t.symbol) for t in topics}
    for assignment in assignments:
        scope = assignment.body.get("scope")
        if _role_guid(parsed, assignment) == EVENT_GRID_DATA_SENDER and (assignment.file, scope) not in topic_symbols:
            findings.append(
                Finding("EG-TOPIC-ROLE", assignment.file, f"{assignment.symbol}: Data Sender only on a declared topic")
            )
    subscriptions = [r for r in all_resources if r.type == f"{CUSTOM_TOPIC}/eventSubscriptions" and not r.existing]
    if not subscriptions:
        findings.append(Finding("EG-OUTCOME-FAILED", "-", f"no subscription matches {FAILED_OUTCOME_EVENT_TYPE}"))
    for sub in subscriptions:
        findings += _check_outcome_subscription(parsed, sub)
    if not _failed_outcome_alert(all_resources):
        findings.append(
            Finding("EG-OUTCOME-FAILED", "-", "no alert on the outcome topic's MatchedEventCount per subscription")
        )
    return findings


# --- host storage: lock blobs ----------------------------------------------------------------------


def check_lock_container(parsed: Parsed) -> list[Finding]:
    """The lock container exists and the app identity can create and lease blobs in it, granted on the
    container or its storage account (never the resource group or subscription)."""
    all_resources = resources(parsed)
    by_symbol = {(r.file, r.symbol): r for r in all_resources}
    containers = [
        r
        for r in all_resources
        if r.type == CONTAINER and not r.existing and _resolve(parsed, r.file, r.body.get("name")) == LOCK_CONTAINER
    ]
    if not containers:
        return [Finding("LOCK-BLOB-ROLE", "-", f"no container {LOCK_CONTAINER} is declared")]
    findings = []
    for container in containers:
        service = by_symbol.get((container.file, str(container.body.get("parent"))))
        account = by_symbol.get((container.file, str(service.body.get("parent")))) if service else None
        scopes = {container.symbol} | ({account.symbol} if account else set())
        granted = [
            a
            for a in _assignments(all_resources)
            if a.file == container.file
            and a.body.get("scope") in scopes
            and _role_guid(parsed, a) in BLOB_WRITE_ROLES
            and _is_app_identity(parsed, a.file, _get(a.body, "properties", "principalId"))
        ]
        if not granted:
            findings.append(
                Finding(
                    "LOCK-BLOB-ROLE",
                    container.file,
                    f"{container.symbol}: the app identity needs Blob Data Owner or Contributor on the container "
                    "or its account (not the resource group or subscription)",
                )
            )
    return findings


# --- role assignments ------------------------------------------------------------------------------


def _role_id_argument(value: Json) -> Json:
    fn = _get(value, "function")
    if (
        isinstance(fn, dict)
        and fn.get("type") == "subscription_resource_id"
        and _get(fn, "parameters", "resource_type") == "Microsoft.Authorization/roleDefinitions"
    ):
        return _get(fn, "parameters", "resource_name_1")
    return None


def _custom_roles(parsed: Parsed) -> list[Resource]:
    return [r for r in resources(parsed) if r.type == "Microsoft.Authorization/roleDefinitions" and not r.existing]


def _role_actions(role: Resource) -> frozenset[str]:
    found: set[str] = set()
    for permission in _get(role.body, "properties", "permissions") or []:
        found |= set(permission.get("actions") or []) | set(permission.get("dataActions") or [])
    return frozenset(found)


def _passed_custom_role(parsed: Parsed, caller: str, value: Json) -> Resource | None:
    """The custom role a caller passes, as `<role>.name` or as the role's own name expression."""
    for role in _custom_roles(parsed):
        if role.file == caller and (_dotted(value) == f"{role.symbol}.name" or value == role.body.get("name")):
            return role
    return None


def _module_calls(parsed: Parsed, module_file: str) -> list[tuple[str, dict[str, Any]]]:
    """(caller file, module body) for every call of the module file `module_file` (paths relative to the root)."""
    calls = []
    for rel, template in _templates(parsed):
        base = rel.rsplit("/", 1)[0] if "/" in rel else ""
        for module in (template.get("modules") or {}).values():
            target = _get(module, "detail", "path") or ""
            resolved = f"{base}/{target}" if base else target
            if resolved.replace("/./", "/") == module_file:
                calls.append((rel, _body(module)))
    return calls


def _module_param_values(parsed: Parsed, module_file: str, param: str) -> list[Json]:
    """Values callers pass for `param` to the module file `module_file` (paths relative to the root)."""
    return [_get(body, "params", param) for _, body in _module_calls(parsed, module_file)]


def _target_scope(parsed: Parsed, rel: str) -> str:
    """`targetScope` of a template (Bicep's default is the resource group)."""
    scope = _get(parsed[rel].get("ok") or {}, "globals", "scope", "value")
    return str(scope) if scope else RESOURCE_GROUP_SCOPE


def _scope_type(parsed: Parsed, res: Resource, by_symbol: dict[tuple[str, str], Resource]) -> str | None:
    """The resource type an assignment is scoped to, or the module's own scope kind when it has no `scope`."""
    if res.type.endswith(PROVIDERS_ROLE_ASSIGNMENT):
        return res.type[: -len(PROVIDERS_ROLE_ASSIGNMENT)]
    if "scope" not in res.body:
        return _target_scope(parsed, res.file)
    scope = res.body.get("scope")
    target = by_symbol.get((res.file, scope)) if isinstance(scope, str) else None
    return target.type if target else None


def _check_assignment(parsed: Parsed, res: Resource, by_symbol: dict[tuple[str, str], Resource]) -> list[Finding]:
    findings = []

    def fail(rule: str, message: str) -> None:
        findings.append(Finding(rule, res.file, f"{res.symbol}: {message}"))

    name = res.body.get("name")
    if not (_get(name, "function", "type") == "guid" or (isinstance(name, str) and "${guid(" in name)):
        fail("ROLE-NAME", "name must be a deterministic guid(...)")
    scope_type = _scope_type(parsed, res, by_symbol)
    if scope_type is None:
        fail("ROLE-SCOPE", "must be scoped to a declared resource")
    role_arg = _resolve(parsed, res.file, _role_id_argument(_get(res.body, "properties", "roleDefinitionId")))
    params = set((parsed[res.file]["ok"].get("parameters") or {}).keys())
    if isinstance(role_arg, str) and _GUID.fullmatch(role_arg):
        allowed = ALLOWED_BUILTIN_ROLES.get(role_arg.lower())
        if allowed is None:
            fail("ROLE-ID", f"role {role_arg} is not on the allowlist")
        elif scope_type not in allowed[1]:
            fail("ROLE-SCOPE", f"{allowed[0]} belongs on {allowed[1]}, not {scope_type}")
    elif isinstance(role_arg, str) and role_arg in params:
        # A custom role passed in: every caller must pass a custom role declared beside the call, and
        # this assignment's scope must be one that role's action set allows.
        calls = _module_calls(parsed, res.file)
        roles = [_passed_custom_role(parsed, caller, _get(body, "params", role_arg)) for caller, body in calls]
        if not roles or any(role is None for role in roles):
            fail("ROLE-ID", f"{role_arg} must name a declared custom role")
        for role in roles:
            allowed_scopes = CUSTOM_ROLES.get(_role_actions(role)) if role else None
            if role and (allowed_scopes is None or scope_type not in allowed_scopes):
                fail("ROLE-SCOPE", f"custom role {role.symbol} on {scope_type}")
    else:
        fail("ROLE-ID", "roleDefinitionId must name a known role")
    return findings


def check_role_assignments(parsed: Parsed, texts: dict[str, str]) -> list[Finding]:
    findings = []
    all_resources = resources(parsed)
    by_symbol = {(r.file, r.symbol): r for r in all_resources}
    for res in all_resources:
        assignment = res.type == ROLE_ASSIGNMENT or res.type.endswith(PROVIDERS_ROLE_ASSIGNMENT)
        if assignment and not res.existing:
            findings += _check_assignment(parsed, res, by_symbol)
    for rel, text in sorted(texts.items()):
        for guid in _GUID.findall(text):
            if guid.lower() in FORBIDDEN_ROLES:
                findings.append(Finding("ROLE-FORBIDDEN", rel, f"{FORBIDDEN_ROLES[guid.lower()]} role ({guid})"))
    return findings


def check_custom_roles(parsed: Parsed) -> list[Finding]:
    """Every custom role grants exactly one of the allowed action sets, and no data actions."""
    findings = []
    for role in _custom_roles(parsed):
        data = any(p.get("dataActions") for p in _get(role.body, "properties", "permissions") or [])
        if _role_actions(role) not in CUSTOM_ROLES or data:
            findings.append(
                Finding(
                    "CUSTOM-ROLE",
                    role.file,
                    f"{role.symbol}: actions {sorted(_role_actions(role))} are not one of the allowed custom roles",
                )
            )
    return findings


# --- alerts ----------------------------------------------------------------------------------------


def check_alert_queries(parsed: Parsed) -> list[Finding]:
    """A log alert on the Log Analytics workspace skips query validation: in a new workspace the tables
    its query reads (AzureDiagnostics) do not exist until the first diagnostic record arrives, and a
    rule whose query does not validate fails the deployment."""
    findings = []
    for res in resources(parsed):
        if res.type != "Microsoft.Insights/scheduledQueryRules" or res.existing:
            continue
        props = res.body.get("properties") or {}
        on_workspace = any("workspace" in repr(scope).lower() for scope in props.get("scopes") or [])
        if on_workspace and props.get("skipQueryValidation") is not True:
            findings.append(
                Finding(
                    "ALERT-EMPTY-WORKSPACE",
                    res.file,
                    f"{res.symbol}: skipQueryValidation must be true on a rule that queries the workspace",
                )
            )
    return findings


# --- function app and telemetry --------------------------------------------------------------------


def _app_settings(res: Resource) -> dict[str, Json]:
    settings = _get(res.body, "properties", "siteConfig", "appSettings") or []
    return {str(s.get("name")): s.get("value") for s in settings if isinstance(s, dict)}


def function_apps(parsed: Parsed) -> list[Resource]:
    return [r for r in resources(parsed) if r.type == "Microsoft.Web/sites" and not r.existing]


def _check_app(parsed: Parsed, res: Resource) -> list[Finding]:
    findings = []

    def fail(rule: str, message: str) -> None:
        findings.append(Finding(rule, res.file, f"{res.symbol}: {message}"))

    props = res.body.get("properties") or {}
    site = props.get("siteConfig") or {}
    if not (
        props.get("httpsOnly") is True
        and site.get("ftpsState") == "Disabled"
        and site.get("minTlsVersion") == "1.2"
        and site.get("remoteDebuggingEnabled") is False
    ):
        fail("APP-HARDENING", "HTTPS only, FTPS off, TLS 1.2, no remote debugging")
    if _get(res.body, "identity", "type") != "UserAssigned":
        fail("APP-HARDENING", "runs as the user-assigned identity")
    if _get(props, "functionAppConfig", "runtime") != {"name": "python", "version": "3.11"}:
        fail("APP-HARDENING", "Python 3.11 on Flex Consumption")
    if site.get("ipSecurityRestrictionsDefaultAction") != "Deny":
        fail("APP-INBOUND", "inbound default action must be Deny")
    rules = _conditional(site.get("ipSecurityRestrictions"))
    branches = [rules[1], rules[2]] if rules else [site.get("ipSecurityRestrictions")]
    for branch in branches:
        for rule in _resolve(parsed, res.file, branch) or []:
            event_grid = isinstance(rule, dict) and rule.get("tag") == "ServiceTag"
            if not (event_grid and rule.get("ipAddress") == "AzureEventGrid"):
                fail("APP-INBOUND", "inbound only from AzureEventGrid")
    access = props.get("publicNetworkAccess")
    cond = _conditional(access)
    if access != "Disabled" and not (cond and cond[1] == "Disabled" and _mentions(cond[0], "isPrivate")):
        fail("APP-INBOUND", "private mode must disable public access")
    settings = _app_settings(res)
    if settings.get("AzureWebJobsStorage__credential") != "managedidentity" or "AzureWebJobsStorage" in settings:
        fail("APP-STORAGE-IDENTITY", "host storage through the identity")
    return findings


def check_function_app(parsed: Parsed, texts: dict[str, str]) -> list[Finding]:
    findings = []
    apps = function_apps(parsed)
    if not apps:
        findings.append(Finding("APP-HARDENING", "-", "no Function App is declared"))
    for res in apps:
        findings += _check_app(parsed, res)
    for res in resources(parsed):
        policy = res.type == "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
        if policy and _get(res.body, "properties", "allow") is not False:
            findings.append(Finding("APP-HARDENING", res.file, f"{res.symbol}: basic publishing credentials allowed"))
    for rel, text in sorted(texts.items()):
        if "listKeys(" in text or "AccountKey=" in text:
            findings.append(Finding("APP-STORAGE-IDENTITY", rel, "storage keys or connection strings are used"))
    return findings


def check_telemetry(parsed: Parsed) -> list[Finding]:
    findings = []
    for res in resources(parsed):
        component = res.type == "Microsoft.Insights/components" and not res.existing
        if component and _get(res.body, "properties", "DisableLocalAuth") is not True:
            findings.append(Finding("APPINSIGHTS-LOCAL-AUTH", res.file, f"{res.symbol}: local authentication on"))
    return findings


def check_parse(parsed: Parsed) -> list[Finding]:
    return [Finding("PARSE", rel, entry["error"]) for rel, entry in sorted(parsed.items()) if "error" in entry]


RULES: tuple[Callable[[Parsed], list[Finding]], ...] = (
    check_parse,
    check_storage,
    check_key_vault,
    check_vault_diagnostics,
    check_event_grid,
    check_custom_roles,
    check_telemetry,
    check_outcome_topic,
    check_lock_container,
    check_alert_queries,
    check_system_topic_region,
    check_vault_name,
    check_vault_admin,
)


def check_tree(parsed: Parsed, texts: dict[str, str]) -> list[Finding]:
    """All findings for one parsed infra/ tree; `texts` maps the same relative paths to file contents."""
    findings = [f for rule in RULES for f in rule(parsed)]
    findings += check_role_assignments(parsed, texts)
    findings += check_function_app(parsed, texts)
    return findings
