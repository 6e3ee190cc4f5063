// The rotation Function App on Flex Consumption (Python 3.11), running as the user-assigned identity.
// Host storage, Application Insights and Key Vault are all reached with that identity: no key or
// connection string appears in the app settings.
param location string
param tags object
param resourceToken string
@description('true: inbound only through the private endpoint (the queue-triggered worker needs none). false: inbound restricted to the AzureEventGrid service tag.')
param isPrivate bool
param deployerIpAddress string
param identityId string
param identityClientId string
param identityPrincipalId string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param integrationSubnetId string
param privateEndpointSubnetId string
param sitesDnsZoneId string
param maximumInstanceCount int
param instanceMemoryMB int
@description('ROTATION_ALLOWED_VAULTS: comma-separated vault URLs.')
param allowedVaults string
@description('ROTATION_ALLOWED_SCOPES: comma-separated ARM scopes or provider URLs secret tags may point at.')
param allowedScopes string
param rotationQueueName string
@description('ROTATION_LOCK_CONTAINER: container of the per-secret lock blobs in the host storage account.')
param lockContainerName string
@description('ROTATION_OUTCOME_TOPIC_ENDPOINT: endpoint of the outcome events topic.')
param outcomeTopicEndpoint string
@description('ROTATION_SWEEP_SCHEDULE: NCRONTAB schedule of the sweep_due_secrets timer.')
param sweepSchedule string
@description('ROTATION_STUCK_AFTER_MINUTES: age after which the sweep treats a half-done rotation as stuck.')
param stuckAfterMinutes int
@description('ROTATION_RETRY_BUDGET_SECONDS: time budget of the retries of one step.')
param retryBudgetSeconds int
@description('ROTATION_ALLOWED_PLUGINS: comma-separated names of plugin rotators (entry points) the app may load; empty: built-ins only.')
param allowedPlugins string = ''
@description('ROTATION_REGISTRATION_MODULE: module of the deployment\'s own code whose register_rotators(registry) adds rotators; empty: none.')
param registrationModule string = ''

// Built-in role definition ID, from Microsoft's Azure built-in roles reference: lets the identity send
// telemetry to an Application Insights resource whose local (key) authentication is disabled.
var monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb'

// ROTATION_KEYVAULT_CREATES_PER_10S: each instance's share of Key Vault's limit on secret CREATEs, 300
// "maximum transactions allowed in 10 seconds, per vault per region" (Azure Key Vault service limits,
// https://learn.microsoft.com/azure/key-vault/general/service-limits, secrets transactions), so that
// maximumInstanceCount instances together stay within it (docs/deployment.md, throughput). Integer
// division floors; above 300 instances each still gets 1 (the adaptive back-off covers the excess).
var keyVaultCreatesPer10s = max(1, 300 / maximumInstanceCount)

var eventGridInbound = [
  {
    name: 'allow-event-grid'
    action: 'Allow'
    tag: 'ServiceTag'
    ipAddress: 'AzureEventGrid'
    priority: 100
  }
]
var deployerInbound = empty(deployerIpAddress) ? [] : [
  {
    name: 'allow-deployer'
    action: 'Allow'
    ipAddress: '${deployerIpAddress}/32'
    priority: 100
  }
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy for Flex Consumption is region-dependent and billed for always-ready instances: the deployer's decision.
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Event Grid's push delivery does not present client certificates; the public mode restricts inbound to the AzureEventGrid service tag and the function key, the private mode has no public inbound at all.
  // checkov:skip=CKV_AZURE_222: private mode sets publicNetworkAccess 'Disabled' (unless a deployer IP is let in to the deployment endpoint); public mode must accept Event Grid's pushes, so inbound is default Deny with only the AzureEventGrid service tag allowed. checkov cannot evaluate the conditional; tests/infra rule APP-INBOUND checks it.
  // checkov:skip=CKV_AZURE_212: Flex Consumption allocates and replaces instances itself up to maximumInstanceCount; a fixed minimum instance count does not apply to it.
  // checkov:skip=CKV_AZURE_213: a health check pings an HTTP path and evicts instances that fail it; this app has no HTTP endpoint to ping (queue and Event Grid triggers) and Flex Consumption manages instance health itself.
  name: 'func-${resourceToken}'
  location: location
  tags: union(tags, {
    'azd-service-name': 'rotation'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: (isPrivate && empty(deployerIpAddress)) ? 'Disabled' : 'Enabled'
    virtualNetworkSubnetId: integrationSubnetId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      remoteDebuggingEnabled: false
      http20Enabled: true
      vnetRouteAllEnabled: true
      ipSecurityRestrictionsDefaultAction: 'Deny'
      ipSecurityRestrictions: isPrivate ? [] : eventGridInbound
      // The deployment (Kudu) endpoint: only the deployer's IP when given; otherwise closed in private
      // mode and Entra-authenticated only in public mode (basic publishing credentials are disabled).
      scmIpSecurityRestrictionsUseMain: false
      scmIpSecurityRestrictionsDefaultAction: (empty(deployerIpAddress) && !isPrivate) ? 'Allow' : 'Deny'
      scmIpSecurityRestrictions: deployerInbound
      appSettings: [
        // Host storage, identity-based (no AzureWebJobsStorage connection string).
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        // Telemetry authenticated with Entra ID (the component disables local authentication).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // Read by azure-identity: which user-assigned identity to use.
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        // Read by secret_rotation/settings.py (APP_SETTING_NAMES; tests/infra compares the two).
        {
          name: 'ROTATION_ALLOWED_VAULTS'
          value: allowedVaults
        }
        {
          name: 'ROTATION_ALLOWED_SCOPES'
          value: allowedScopes
        }
        {
          name: 'ROTATION_QUEUE_NAME'
          value: rotationQueueName
        }
        {
          name: 'ROTATION_LOCK_CONTAINER'
          value: lockContainerName
        }
        {
          name: 'ROTATION_OUTCOME_TOPIC_ENDPOINT'
          value: outcomeTopicEndpoint
        }
        {
          name: 'ROTATION_SWEEP_SCHEDULE'
          value: sweepSchedule
        }
        {
          name: 'ROTATION_STUCK_AFTER_MINUTES'
          value: string(stuckAfterMinutes)
        }
        {
          name: 'ROTATION_RETRY_BUDGET_SECONDS'
          value: string(retryBudgetSeconds)
        }
        {
          name: 'ROTATION_ALLOWED_PLUGINS'
          value: allowedPlugins
        }
        {
          name: 'ROTATION_REGISTRATION_MODULE'
          value: registrationModule
        }
        {
          name: 'ROTATION_KEYVAULT_CREATES_PER_10S'
          value: string(keyVaultCreatesPer10s)
        }
        {
          name: 'KEYVAULT_API_VERSION'
          value: '7.6'
        }
      ]
    }
  }
}

// Deployments authenticate with Entra ID only.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

resource telemetryPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identityPrincipalId, monitoringMetricsPublisherRoleId)
  scope: appInsights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisherRoleId)
  }
}

module appEndpoint 'private-endpoint.bicep' = if (isPrivate) {
  name: 'pe-sites-${resourceToken}'
  params: {
    location: location
    tags: tags
    name: 'pe-sites-${resourceToken}'
    subnetId: privateEndpointSubnetId
    targetResourceId: app.id
    groupId: 'sites'
    privateDnsZoneId: sitesDnsZoneId
  }
}

output name string = app.name
output id string = app.id
