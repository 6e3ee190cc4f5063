// Entry point for `azd up`: one resource group holding the rotation Function App, its host storage,
// monitoring, networking and (unless an existing vault is given) the Key Vault it rotates secrets in.
// Subscription scope because the resource group, the optional SQL custom role and the optional
// Defender plan are subscription-level resources.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Region for all resources (must offer Flex Consumption).')
param location string

@allowed([
  'private'
  'public'
])
@description('private: Key Vault events go to a Storage queue the worker consumes; the app has no public inbound. public: events are pushed to the Event Grid trigger function, inbound restricted to Event Grid.')
param eventDeliveryMode string = 'private'

@description('Resource ID of an existing Key Vault to rotate secrets in (same subscription). Empty: create a new vault that meets the baseline.')
param existingKeyVaultResourceId string = ''

@description('With existingKeyVaultResourceId: also grant secretsAdminPrincipalId Key Vault Secrets Officer on that (possibly shared) vault. Off by default: an existing vault\'s access belongs to its owners (docs/security.md).')
param grantSecretsAdminOnExistingVault bool = false

@description('Enable Microsoft Defender for Key Vault on the whole subscription (billed per vault).')
param enableDefenderForKeyVault bool = false

@description('Resource IDs of storage accounts whose keys the service rotates (storage-account-key): Storage Account Key Operator Service Role and Reader on each.')
param managedStorageAccountIds array = []

@description('Resource IDs of Azure SQL logical servers (this subscription) whose administrator password the service rotates (azure-sql-admin): custom roles, server read/write on each server, operation status on its resource group.')
param managedSqlServerIds array = []

@description('Resource IDs of Azure Database for PostgreSQL flexible servers (this subscription) whose administrator password the service rotates (postgres-flexible-admin): custom roles, server read/write on each server, operation status on the subscription.')
param managedPostgresFlexibleServerIds array = []

@description('Object IDs of Entra ID applications whose client secrets the service rotates (entra-app-secret). Only ROTATION_ALLOWED_SCOPES is set here; the Graph permission is a manual step (docs/deployment.md).')
param managedApplicationObjectIds array = []

@description('Further scopes or provider URLs that secret tags may point at (ROTATION_ALLOWED_SCOPES).')
param additionalAllowedScopes array = []

@description('Object ID of a person or group granted Key Vault Secrets Officer to create and tag secrets: on a new vault; on an existing vault only with grantSecretsAdminOnExistingVault. Empty: none.')
param secretsAdminPrincipalId string = ''

@description('Public IP of the machine running azd deploy and onboarding. Empty: vault, storage and app accept no public traffic at all.')
param deployerIpAddress string = ''

@description('Email addresses notified by the alerts.')
param alertEmailAddresses array = []

@description('Webhook URIs (e.g. an incident system) notified by the alerts.')
param alertWebhookUris array = []

@description('Address space of the virtual network.')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Subnet for Flex Consumption VNet integration (delegated to Microsoft.App/environments).')
param integrationSubnetPrefix string = '10.40.0.0/24'

@description('Subnet for private endpoints.')
param privateEndpointSubnetPrefix string = '10.40.1.0/24'

@minValue(1)
@maxValue(30)
@description('Event Grid delivery attempts before an event is dead-lettered.')
param maxDeliveryAttempts int = 10

@minValue(1)
@maxValue(1440)
@description('Minutes Event Grid keeps retrying an event before it is dead-lettered.')
param eventTimeToLiveInMinutes int = 1440

@minValue(1)
@maxValue(1000)
@description('Flex Consumption scale-out limit.')
param maximumInstanceCount int = 40

@allowed([
  2048
  4096
])
@description('Flex Consumption instance memory.')
param instanceMemoryMB int = 2048

@description('Replication of the host storage account (queue messages, deployment package, dead letters).')
param hostStorageSku string = 'Standard_ZRS'

@minValue(30)
@maxValue(730)
@description('Log Analytics retention (audit events, traces).')
param logRetentionInDays int = 90

@minLength(11)
@description('ROTATION_SWEEP_SCHEDULE: NCRONTAB schedule (six fields, UTC) of the sweep that enqueues due secrets the events missed. Default: every six hours.')
param rotationSweepSchedule string = '0 0 */6 * * *'

@minValue(1)
@maxValue(1440)
@description('ROTATION_STUCK_AFTER_MINUTES: minutes after which the sweep treats a half-done rotation as stuck and re-queues it.')
param rotationStuckAfterMinutes int = 60

@minValue(1)
@maxValue(540)
@description('ROTATION_RETRY_BUDGET_SECONDS: seconds one step may spend retrying transient errors (well under the 10-minute function timeout of host.json).')
param rotationRetryBudgetSeconds int = 60

@description('ROTATION_ALLOWED_PLUGINS: names of plugin rotators (installed packages, entry-point group secret_rotation.rotators) the app may load. Empty: built-ins only.')
param allowedPlugins array = []

@description('ROTATION_REGISTRATION_MODULE: a module of the deployment\'s own code, shipped in the package, whose register_rotators(registry) adds rotators when the service is built. Empty: none.')
param registrationModule string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  workload: 'secret-rotation'
}
var isPrivate = eventDeliveryMode == 'private'
var useExistingVault = !empty(existingKeyVaultResourceId)
// A new vault's name is seeded with the identity's principal ID, which is new whenever the environment
// is created again: `azd down` deletes the identity with the resource group but leaves the vault
// soft-deleted, its name reserved for 90 days by purge protection, so a name derived only from the
// environment name would collide on the next `azd up`. Re-provisioning an existing environment keeps the
// identity, hence the name (docs/deployment.md, "Clean up and re-create").
var newVaultName = 'kv-${uniqueString(subscription().id, environmentName, identity.outputs.principalId)}'
var vaultName = useExistingVault ? last(split(existingKeyVaultResourceId, '/')) : newVaultName
var vaultResourceGroup = useExistingVault ? split(existingKeyVaultResourceId, '/')[4] : rg.name
// The code compares vault URLs lower-cased without a trailing slash (secret_rotation/settings.py).
var vaultUri = 'https://${vaultName}${environment().suffixes.keyvaultDns}'
var rotationQueueName = 'secret-rotation'
// The scope the entra-app-secret rotator gives an application (docs/tags.md): one entry per application.
var applicationScopes = [for objectId in managedApplicationObjectIds: '/tenants/${tenant().tenantId}/applications/${objectId}']
var allowedScopes = concat(managedStorageAccountIds, managedSqlServerIds, managedPostgresFlexibleServerIds, applicationScopes, additionalAllowedScopes)
// The secrets administrator is granted on a new vault, and on an existing one only when asked for.
var grantSecretsAdmin = (!useExistingVault) || grantSecretsAdminOnExistingVault

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    logRetentionInDays: logRetentionInDays
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'id-${resourceToken}'
  }
}

module network 'modules/network.bicep' = {
  name: 'network'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    vnetAddressPrefix: vnetAddressPrefix
    integrationSubnetPrefix: integrationSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'st${resourceToken}'
    skuName: hostStorageSku
    rotationQueueName: rotationQueueName
    principalId: identity.outputs.principalId
    deployerIpAddress: deployerIpAddress
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    blobDnsZoneId: network.outputs.blobDnsZoneId
    queueDnsZoneId: network.outputs.queueDnsZoneId
    tableDnsZoneId: network.outputs.tableDnsZoneId
  }
}

module keyVault 'modules/keyvault.bicep' = if (!useExistingVault) {
  name: 'keyvault'
  scope: rg
  params: {
    location: location
    tags: tags
    name: vaultName
    deployerIpAddress: deployerIpAddress
  }
}

// Role assignment and audit logging go where the vault is, new or existing.
module keyVaultAccess 'modules/keyvault-access.bicep' = {
  name: 'keyvault-access'
  scope: resourceGroup(vaultResourceGroup)
  params: {
    vaultName: vaultName
    principalId: identity.outputs.principalId
    secretsAdminPrincipalId: grantSecretsAdmin ? secretsAdminPrincipalId : ''
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
  dependsOn: [
    keyVault
  ]
}

module keyVaultEndpoint 'modules/private-endpoint.bicep' = {
  name: 'keyvault-endpoint'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'pe-kv-${resourceToken}'
    subnetId: network.outputs.privateEndpointSubnetId
    targetResourceId: useExistingVault ? existingKeyVaultResourceId : resourceId(subscription().subscriptionId, rg.name, 'Microsoft.KeyVault/vaults', vaultName)
    groupId: 'vault'
    privateDnsZoneId: network.outputs.vaultDnsZoneId
  }
  dependsOn: [
    keyVault
  ]
}

// Outcome events (SecretRotated, SecretRotationFailed): Entra-only custom topic, private endpoint only.
module outcomeTopic 'modules/outcome-topic.bicep' = {
  name: 'outcome-topic'
  scope: rg
  params: {
    location: location
    tags: tags
    name: 'evgt-outcomes-${resourceToken}'
    publisherPrincipalId: identity.outputs.principalId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    eventGridDnsZoneId: network.outputs.eventGridDnsZoneId
    storageAccountName: storage.outputs.name
    failedEventsQueueName: storage.outputs.failedEventsQueueName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    isPrivate: isPrivate
    deployerIpAddress: deployerIpAddress
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    integrationSubnetId: network.outputs.integrationSubnetId
    privateEndpointSubnetId: network.outputs.privateEndpointSubnetId
    sitesDnsZoneId: network.outputs.sitesDnsZoneId
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    allowedVaults: vaultUri
    allowedScopes: join(allowedScopes, ',')
    rotationQueueName: rotationQueueName
    lockContainerName: storage.outputs.lockContainerName
    outcomeTopicEndpoint: outcomeTopic.outputs.endpoint
    sweepSchedule: rotationSweepSchedule
    stuckAfterMinutes: rotationStuckAfterMinutes
    retryBudgetSeconds: rotationRetryBudgetSeconds
    allowedPlugins: join(allowedPlugins, ',')
    registrationModule: registrationModule
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    // A system topic lives in its source's region, which for an existing vault need not be this one.
    location: keyVaultAccess.outputs.vaultLocation
    tags: tags
    name: 'evgt-${resourceToken}'
    vaultResourceId: useExistingVault ? existingKeyVaultResourceId : resourceId(subscription().subscriptionId, rg.name, 'Microsoft.KeyVault/vaults', vaultName)
    deliverToQueue: isPrivate
    storageAccountName: storage.outputs.name
    rotationQueueName: rotationQueueName
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
  dependsOn: [
    keyVault
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    emailAddresses: alertEmailAddresses
    webhookUris: alertWebhookUris
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    systemTopicId: eventGrid.outputs.systemTopicId
    poisonQueueName: storage.outputs.poisonQueueName
    outcomeTopicId: outcomeTopic.outputs.id
    failedOutcomeSubscriptionName: outcomeTopic.outputs.failedSubscriptionName
  }
}

// --- Grants for the management-plane rotators: exactly what each rotator calls, on exactly the listed
// resources. Action strings are from Microsoft's resource provider operations reference (Azure
// permissions for Databases); tests/infra rule CUSTOM-ROLE allows these sets and nothing else.

// storage-account-key: list and regenerate keys (Storage Account Key Operator Service Role) and read the
// account's blob endpoint (Reader), on each account, wherever it lives.
module storageTargets 'modules/target-storage.bicep' = [for (accountId, i) in managedStorageAccountIds: {
  name: 'target-storage-${i}'
  scope: resourceGroup(split(accountId, '/')[2], split(accountId, '/')[4])
  params: {
    storageAccountName: last(split(accountId, '/'))
    principalId: identity.outputs.principalId
  }
}]

// azure-sql-admin: the server update that sets the administrator password is a long-running operation.
// SQL Server Contributor could also delete servers and change firewalls and auditing; this role only
// reads the server and writes it.
resource sqlPasswordRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(managedSqlServerIds)) {
  name: guid(subscription().id, environmentName, 'secret-rotation-sql-password-operator')
  properties: {
    roleName: 'Secret rotation SQL password operator (${environmentName})'
    description: 'Reads a SQL server and updates its administrator password; nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Sql/servers/read'
          'Microsoft.Sql/servers/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// The SDK polls the update through the Azure-AsyncOperation and Location URLs SQL returns, which lie
// under the server's resource group, not under the server:
// /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Sql/locations/{region}/serverAzureAsyncOperation/{id}
// (and .../serverOperationResults/{id}). ARM authorizes those GETs as
// Microsoft.Sql/locations/serverAzureAsyncOperation/read and .../serverOperationResults/read over that
// scope, but Microsoft.Sql's operations list registers neither name, so a custom role cannot name them
// (Azure/azure-rest-api-specs#13700 shows the same for managed databases); the wildcard below is what
// the built-in SQL DB Contributor role uses for them. Read only: operation statuses and location
// metadata, never a server's configuration or data.
resource sqlOperationStatusRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(managedSqlServerIds)) {
  name: guid(subscription().id, environmentName, 'secret-rotation-sql-operation-status')
  properties: {
    roleName: 'Secret rotation SQL operation status reader (${environmentName})'
    description: 'Reads the status of SQL long-running operations (location-level reads only).'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Sql/locations/*/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// One at a time: servers in one resource group share the group's (idempotent) status assignment.
@batchSize(1)
module sqlTargets 'modules/target-sql.bicep' = [for (serverId, i) in managedSqlServerIds: {
  name: 'target-sql-${i}'
  scope: resourceGroup(split(serverId, '/')[2], split(serverId, '/')[4])
  params: {
    sqlServerName: last(split(serverId, '/'))
    principalId: identity.outputs.principalId
    passwordRoleName: sqlPasswordRole.name
    operationStatusRoleName: sqlOperationStatusRole.name
  }
  // A role definition must exist before it is assigned.
  dependsOn: [
    sqlPasswordRole
    sqlOperationStatusRole
  ]
}]

// postgres-flexible-admin: the server update that sets the administrator password is a long-running
// operation (Microsoft.DBforPostgreSQL/flexibleServers write).
resource postgresPasswordRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(managedPostgresFlexibleServerIds)) {
  name: guid(subscription().id, environmentName, 'secret-rotation-postgres-password-operator')
  properties: {
    roleName: 'Secret rotation PostgreSQL flexible server password operator (${environmentName})'
    description: 'Reads a PostgreSQL flexible server and updates its administrator password; nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.DBforPostgreSQL/flexibleServers/read'
          'Microsoft.DBforPostgreSQL/flexibleServers/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

// PostgreSQL returns subscription-level polling URLs:
// /subscriptions/{s}/providers/Microsoft.DBforPostgreSQL/locations/{region}/azureAsyncOperation/{id}
// (and .../operationResults/{id}), so these two registered read actions are granted on the
// subscription. They reveal operation statuses only.
resource postgresOperationStatusRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!empty(managedPostgresFlexibleServerIds)) {
  name: guid(subscription().id, environmentName, 'secret-rotation-postgres-operation-status')
  properties: {
    roleName: 'Secret rotation PostgreSQL operation status reader (${environmentName})'
    description: 'Reads the status of PostgreSQL long-running operations; nothing else.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.DBforPostgreSQL/locations/azureAsyncOperation/read'
          'Microsoft.DBforPostgreSQL/locations/operationResults/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      subscription().id
    ]
  }
}

module postgresTargets 'modules/target-postgres-flexible.bicep' = [for (serverId, i) in managedPostgresFlexibleServerIds: {
  name: 'target-postgres-flexible-${i}'
  scope: resourceGroup(split(serverId, '/')[2], split(serverId, '/')[4])
  params: {
    serverName: last(split(serverId, '/'))
    principalId: identity.outputs.principalId
    passwordRoleName: postgresPasswordRole.name
  }
  dependsOn: [
    postgresPasswordRole
  ]
}]

module postgresOperationStatus 'modules/operation-status-reader.bicep' = if (!empty(managedPostgresFlexibleServerIds)) {
  name: 'postgres-operation-status'
  params: {
    principalId: identity.outputs.principalId
    roleName: postgresOperationStatusRole.name
  }
  dependsOn: [
    postgresOperationStatusRole
  ]
}

// entra-app-secret: nothing to deploy. The Graph application permission Application.ReadWrite.OwnedBy
// and ownership of each application are granted by a directory administrator (docs/deployment.md).

// Subscription-wide plan, so opt-in: it bills every vault in the subscription.
module defenderForKeyVault 'modules/defender.bicep' = if (enableDefenderForKeyVault) {
  name: 'defender-for-key-vault'
}

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
// The hooks pass it to every CLI call, so they never act on whatever subscription the CLI defaults to.
output AZURE_SUBSCRIPTION_ID string = subscription().subscriptionId
output AZURE_RESOURCE_GROUP string = rg.name
output EVENT_DELIVERY_MODE string = eventDeliveryMode
output FUNCTION_APP_NAME string = functionApp.outputs.name
output EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.systemTopicName
output HOST_STORAGE_ACCOUNT_ID string = storage.outputs.id
output DEAD_LETTER_CONTAINER_NAME string = storage.outputs.deadLetterContainerName
output LOCK_CONTAINER_NAME string = storage.outputs.lockContainerName
output FAILED_EVENTS_QUEUE_NAME string = storage.outputs.failedEventsQueueName
output OUTCOME_TOPIC_NAME string = outcomeTopic.outputs.name
output OUTCOME_TOPIC_ENDPOINT string = outcomeTopic.outputs.endpoint
output KEYVAULT_NAME string = vaultName
output KEYVAULT_URI string = vaultUri
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// The Entra onboarding step grants Graph access to this principal (docs/deployment.md).
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MAX_DELIVERY_ATTEMPTS int = maxDeliveryAttempts
output EVENT_TTL_MINUTES int = eventTimeToLiveInMinutes
