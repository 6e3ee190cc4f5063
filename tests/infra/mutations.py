"""Deliberate weakenings of infra/: each must make the named custom rule fire."""

from __future__ import annotations

from dataclasses import dataclass

# Built-in role definition IDs, from Microsoft's Azure built-in roles reference.
OWNER_ROLE_ID = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
CONTRIBUTOR_ROLE_ID = "b24988ac-6180-42a0-ab88-20f7382dd24c"
EVENTGRID_CONTRIBUTOR_ROLE_ID = "1e241071-0855-49ea-94dc-649edcd759de"
EVENTGRID_DATA_SENDER_ROLE_ID = "d5a91429-5739-47e2-a06b-3470a27159e7"
STORAGE_BLOB_DATA_OWNER_ROLE_ID = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_BLOB_DATA_READER_ROLE_ID = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    old: str
    new: str
    rule: str


MUTATIONS: tuple[Mutation, ...] = (
    Mutation(
        "shared-key",
        "modules/storage.bicep",
        "allowSharedKeyAccess: false",
        "allowSharedKeyAccess: true",
        "STORAGE-SHARED-KEY",
    ),
    Mutation(
        "blob-public",
        "modules/storage.bicep",
        "allowBlobPublicAccess: false",
        "allowBlobPublicAccess: true",
        "STORAGE-PUBLIC-BLOB",
    ),
    Mutation(
        "container-public",
        "modules/storage.bicep",
        "publicAccess: 'None'",
        "publicAccess: 'Blob'",
        "STORAGE-PUBLIC-BLOB",
    ),
    Mutation(
        "storage-tls",
        "modules/storage.bicep",
        "minimumTlsVersion: 'TLS1_2'",
        "minimumTlsVersion: 'TLS1_0'",
        "STORAGE-TLS",
    ),
    Mutation(
        "kv-access-policies",
        "modules/keyvault.bicep",
        "enableRbacAuthorization: true",
        "enableRbacAuthorization: false",
        "KV-RBAC",
    ),
    Mutation(
        "kv-purge",
        "modules/keyvault.bicep",
        "enablePurgeProtection: true",
        "enablePurgeProtection: false",
        "KV-RECOVERY",
    ),
    Mutation(
        "kv-retention",
        "modules/keyvault.bicep",
        "softDeleteRetentionInDays: 90",
        "softDeleteRetentionInDays: 7",
        "KV-RECOVERY",
    ),
    Mutation(
        "kv-public",
        "modules/keyvault.bicep",
        "publicNetworkAccess: empty(deployerIpAddress) ? 'Disabled' : 'Enabled'",
        "publicNetworkAccess: 'Enabled'",
        "KV-NETWORK",
    ),
    Mutation("kv-firewall", "modules/keyvault.bicep", "defaultAction: 'Deny'", "defaultAction: 'Allow'", "KV-NETWORK"),
    Mutation(
        "kv-no-audit",
        "modules/keyvault-access.bicep",
        "category: 'AuditEvent'",
        "category: 'AzurePolicyEvaluationDetails'",
        "KV-DIAGNOSTICS",
    ),
    Mutation(
        "eg-new-version",
        "modules/eventgrid.bicep",
        "'Microsoft.KeyVault.SecretExpired'",
        "'Microsoft.KeyVault.SecretExpired'\n        'Microsoft.KeyVault.SecretNewVersionCreated'",
        "EG-EVENT-TYPES",
    ),
    Mutation(
        "eg-missing-expired",
        "modules/event-subscription-function.bicep",
        "'Microsoft.KeyVault.SecretExpired'",
        "'Microsoft.KeyVault.SecretNearExpiry'",
        "EG-EVENT-TYPES",
    ),
    Mutation(
        "eg-no-retry",
        "modules/event-subscription-function.bicep",
        "retryPolicy: {",
        "retryPolicyRemoved: {",
        "EG-RETRY",
    ),
    Mutation(
        "eg-keyed-dead-letter",
        "modules/eventgrid.bicep",
        "deadLetterWithResourceIdentity: {",
        "deadLetterDestination: {",
        "EG-DEADLETTER",
    ),
    Mutation(
        "eg-topic-no-identity",
        "modules/eventgrid.bicep",
        "identity: {\n    type: 'SystemAssigned'",
        "identity: {\n    type: 'None'",
        "EG-IDENTITY",
    ),
    Mutation(
        "eg-no-queue-mode",
        "modules/eventgrid.bicep",
        "endpointType: 'StorageQueue'",
        "endpointType: 'ServiceBusQueue'",
        "EG-MODES",
    ),
    Mutation(
        "role-owner",
        "modules/keyvault-access.bicep",
        "'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'",
        f"'{OWNER_ROLE_ID}'",
        "ROLE-FORBIDDEN",
    ),
    Mutation(
        "role-unlisted",
        "modules/keyvault-access.bicep",
        "'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'",
        "'4633458b-17de-408a-b874-0445c86b69e6'",
        "ROLE-ID",
    ),
    Mutation("role-rg-scope", "modules/storage.bicep", "  scope: hostStorage\n", "", "ROLE-SCOPE"),
    Mutation("role-wrong-scope", "modules/eventgrid.bicep", "scope: rotationQueue", "scope: storage", "ROLE-SCOPE"),
    Mutation(
        "role-random-name",
        "modules/storage.bicep",
        "name: guid(hostStorage.id, principalId, storageBlobDataOwnerRoleId)",
        "name: '${uniqueString(principalId)}'",
        "ROLE-NAME",
    ),
    Mutation(
        "sql-contributor",
        "modules/target-sql.bicep",
        "subscriptionResourceId('Microsoft.Authorization/roleDefinitions', passwordRoleName)",
        f"subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '{CONTRIBUTOR_ROLE_ID}')",
        "ROLE-FORBIDDEN",
    ),
    Mutation(
        "sql-role-wildcard",
        "main.bicep",
        "'Microsoft.Sql/servers/write'",
        "'Microsoft.Sql/servers/write'\n          'Microsoft.Sql/*'",
        "CUSTOM-ROLE",
    ),
    # Grants of the management-plane rotators (main.bicep, modules/target-*.bicep).
    Mutation(
        "pg-role-wildcard",
        "main.bicep",
        "'Microsoft.DBforPostgreSQL/flexibleServers/write'",
        "'Microsoft.DBforPostgreSQL/flexibleServers/write'\n          'Microsoft.DBforPostgreSQL/*'",
        "CUSTOM-ROLE",
    ),
    Mutation(
        "sql-status-role-writes",
        "main.bicep",
        "'Microsoft.Sql/locations/*/read'",
        "'Microsoft.Sql/locations/*'",
        "CUSTOM-ROLE",
    ),
    Mutation(
        "pg-password-role-on-group",
        "modules/target-postgres-flexible.bicep",
        "  scope: server\n",
        "",
        "ROLE-SCOPE",
    ),
    Mutation(
        "pg-status-role-on-server",
        "main.bicep",
        "passwordRoleName: postgresPasswordRole.name",
        "passwordRoleName: postgresOperationStatusRole.name",
        "ROLE-SCOPE",
    ),
    Mutation(
        "storage-reader-on-group",
        "modules/target-storage.bicep",
        "readerRoleId)\n  scope: target\n",
        "readerRoleId)\n",
        "ROLE-SCOPE",
    ),
    # Deployment defects of issue 9 item 6.
    Mutation(
        "alert-validated-on-empty-workspace",
        "modules/alerts.bicep",
        "    skipQueryValidation: true\n",
        "",
        "ALERT-EMPTY-WORKSPACE",
    ),
    Mutation(
        "topic-in-deployment-region",
        "main.bicep",
        "location: keyVaultAccess.outputs.vaultLocation",
        "location: location",
        "EG-TOPIC-REGION",
    ),
    Mutation(
        "vault-name-from-environment-only",
        "main.bicep",
        "environmentName, identity.outputs.principalId)}'",
        "environmentName, location)}'",
        "KV-NAME-REUSE",
    ),
    Mutation(
        "admin-on-existing-vault-always",
        "main.bicep",
        "secretsAdminPrincipalId: grantSecretsAdmin ? secretsAdminPrincipalId : ''",
        "secretsAdminPrincipalId: secretsAdminPrincipalId",
        "KV-ADMIN-EXISTING",
    ),
    Mutation(
        "admin-on-existing-vault-by-default",
        "main.bicep",
        "param grantSecretsAdminOnExistingVault bool = false",
        "param grantSecretsAdminOnExistingVault bool = true",
        "KV-ADMIN-EXISTING",
    ),
    Mutation(
        "app-ftps", "modules/functionapp.bicep", "ftpsState: 'Disabled'", "ftpsState: 'AllAllowed'", "APP-HARDENING"
    ),
    Mutation("app-http", "modules/functionapp.bicep", "httpsOnly: true", "httpsOnly: false", "APP-HARDENING"),
    Mutation(
        "app-inbound-open",
        "modules/functionapp.bicep",
        "ipSecurityRestrictionsDefaultAction: 'Deny'",
        "ipSecurityRestrictionsDefaultAction: 'Allow'",
        "APP-INBOUND",
    ),
    Mutation(
        "app-public-private-mode",
        "modules/functionapp.bicep",
        "publicNetworkAccess: (isPrivate && empty(deployerIpAddress)) ? 'Disabled' : 'Enabled'",
        "publicNetworkAccess: 'Enabled'",
        "APP-INBOUND",
    ),
    Mutation(
        "app-connection-string",
        "modules/functionapp.bicep",
        "appSettings: [",
        "appSettings: [\n        {\n          name: 'AzureWebJobsStorage'\n"
        "          value: 'AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value}'\n"
        "        }",
        "APP-STORAGE-IDENTITY",
    ),
    Mutation(
        "appinsights-keys",
        "modules/monitoring.bicep",
        "DisableLocalAuth: true",
        "DisableLocalAuth: false",
        "APPINSIGHTS-LOCAL-AUTH",
    ),
    # Outcome topic (modules/outcome-topic.bicep).
    Mutation(
        "topic-local-auth",
        "modules/outcome-topic.bicep",
        "disableLocalAuth: true",
        "disableLocalAuth: false",
        "EG-TOPIC-AUTH",
    ),
    Mutation(
        "topic-public",
        "modules/outcome-topic.bicep",
        "publicNetworkAccess: 'Disabled'",
        "publicNetworkAccess: 'Enabled'",
        "EG-TOPIC-NETWORK",
    ),
    Mutation(
        "topic-ip-rule",
        "modules/outcome-topic.bicep",
        "inboundIpRules: []",
        "inboundIpRules: [\n      {\n        ipMask: '0.0.0.0/0'\n        action: 'Allow'\n      }\n    ]",
        "EG-TOPIC-NETWORK",
    ),
    Mutation(
        "topic-no-private-endpoint",
        "modules/outcome-topic.bicep",
        "targetResourceId: outcomeTopic.id",
        "targetResourceId: storage.id",
        "EG-TOPIC-NETWORK",
    ),
    Mutation(
        "topic-tls",
        "modules/outcome-topic.bicep",
        "minimumTlsVersionAllowed: '1.2'",
        "minimumTlsVersionAllowed: '1.0'",
        "EG-TOPIC-TLS",
    ),
    Mutation(
        "topic-no-publish-audit",
        "modules/outcome-topic.bicep",
        "category: 'DataPlaneRequests'",
        "category: 'PublishFailures'",
        "EG-TOPIC-DIAGNOSTICS",
    ),
    Mutation(
        "topic-no-identity",
        "modules/outcome-topic.bicep",
        "identity: {\n    type: 'SystemAssigned'\n  }\n  properties: {\n    // The code publishes",
        "identity: {\n    type: 'None'\n  }\n  properties: {\n    // The code publishes",
        "EG-IDENTITY",
    ),
    Mutation(
        "topic-role-rg-scope",
        "modules/outcome-topic.bicep",
        "  scope: outcomeTopic\n  properties: {\n    principalId: publisherPrincipalId",
        "  properties: {\n    principalId: publisherPrincipalId",
        "EG-TOPIC-ROLE",
    ),
    Mutation(
        "topic-role-contributor",
        "modules/outcome-topic.bicep",
        f"var eventGridDataSenderRoleId = '{EVENTGRID_DATA_SENDER_ROLE_ID}'",
        f"var eventGridDataSenderRoleId = '{EVENTGRID_CONTRIBUTOR_ROLE_ID}'",
        "EG-TOPIC-ROLE",
    ),
    Mutation(
        "topic-extra-role",
        "modules/outcome-topic.bicep",
        "  scope: failedEventsQueue\n",
        "  scope: outcomeTopic\n",
        "EG-TOPIC-ROLE",
    ),
    Mutation(
        "outcome-sub-all-outcomes",
        "modules/outcome-topic.bicep",
        "        failedEventType\n",
        "        failedEventType\n        'SecretRotation.SecretRotated'\n",
        "EG-OUTCOME-FAILED",
    ),
    Mutation(
        "outcome-alert-all-published",
        "modules/alerts.bicep",
        "metricName: 'MatchedEventCount'",
        "metricName: 'PublishSuccessCount'",
        "EG-OUTCOME-FAILED",
    ),
    Mutation(
        "outcome-sub-no-retry",
        "modules/outcome-topic.bicep",
        "retryPolicy: {",
        "retryPolicyRemoved: {",
        "EG-RETRY",
    ),
    # Lock blobs (modules/storage.bicep): the identity must be able to create and lease them, on the
    # container or its account only.
    Mutation("lock-role-rg-scope", "modules/storage.bicep", "  scope: hostStorage\n", "", "LOCK-BLOB-ROLE"),
    Mutation(
        "lock-role-reader",
        "modules/storage.bicep",
        f"var storageBlobDataOwnerRoleId = '{STORAGE_BLOB_DATA_OWNER_ROLE_ID}'",
        f"var storageBlobDataOwnerRoleId = '{STORAGE_BLOB_DATA_READER_ROLE_ID}'",
        "LOCK-BLOB-ROLE",
    ),
    Mutation(
        "lock-role-other-principal",
        "modules/storage.bicep",
        "storageBlobDataOwnerRoleId)\n  scope: hostStorage\n  properties: {\n    principalId: principalId\n",
        "storageBlobDataOwnerRoleId)\n  scope: hostStorage\n  properties: {\n    principalId: deployerIpAddress\n",
        "LOCK-BLOB-ROLE",
    ),
    Mutation(
        "lock-container-missing",
        "modules/storage.bicep",
        "var lockContainerName = 'rotation-locks'",
        "var lockContainerName = 'locks'",
        "LOCK-BLOB-ROLE",
    ),
    Mutation(
        "parse-error",
        "modules/identity.bicep",
        "output id string = identity.id",
        "output id string = identity.id\nresource broken 'x@1' = {{{",
        "PARSE",
    ),
)
