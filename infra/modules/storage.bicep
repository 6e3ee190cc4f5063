// Host storage of the Function App: the rotation queue and its poison queue, the Flex Consumption
// deployment container, the Event Grid dead-letter container, the per-secret lock container and the
// queue of failed-rotation outcome events. Identity-only: shared keys are disabled, so no connection
// string exists to leak.
param location string
param tags object
param name string
param skuName string
param rotationQueueName string
param principalId string
param deployerIpAddress string
param logAnalyticsWorkspaceId string
param privateEndpointSubnetId string
param blobDnsZoneId string
param queueDnsZoneId string
param tableDnsZoneId string

var deploymentContainerName = 'deployment-package'
// secret_rotation/replay.py reads dead letters from this container by default (tests/infra compares them).
var deadLetterContainerName = 'eventgrid-deadletter'
// ROTATION_LOCK_CONTAINER: one blob per secret, leased while it rotates (secret_rotation/blob_lock.py).
var lockContainerName = 'rotation-locks'
// Failed-rotation outcome events, delivered by the outcome topic's subscription (outcome-topic.bicep).
var failedEventsQueueName = 'rotation-failed-events'
// The Functions host moves a message here after 5 failed dequeues (name fixed by the host).
var poisonQueueName = '${rotationQueueName}-poison'

// Built-in role definition IDs, from Microsoft's Azure built-in roles reference.
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributorRoleId = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_59: public network access stays 'Enabled' only so that the trusted-services exception (bypass AzureServices) admits Event Grid's managed-identity delivery to the queue and the dead-letter container; defaultAction is Deny and no IP or VNet rule admits anyone else except the optional deployer IP. Apps reach it through private endpoints.
  // checkov:skip=CKV_AZURE_206: holds only transient queue messages, the deployment package and dead letters; the Function App is regional, so geo-replication would add cost without recovery value. ZRS by default (hostStorageSku).
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      ipRules: empty(deployerIpAddress) ? [] : [
        {
          value: deployerIpAddress
          action: 'Allow'
        }
      ]
      virtualNetworkRules: []
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Lock blobs hold no data (empty blobs whose leases are the locks); the app identity creates and leases
// them with Storage Blob Data Owner on the account (blobDataOwner below), which the Functions host
// itself requires on its storage account, so no narrower assignment would take anything away.
resource lockContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: lockContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: hostStorage
  name: 'default'
}

resource rotationQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: rotationQueueName
}

resource poisonQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: poisonQueueName
}

resource failedEventsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: failedEventsQueueName
}

// Storage logs for queue and blob access, so reads and writes of rotation messages are auditable.
resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'StorageRead'
        enabled: true
      }
      {
        category: 'StorageWrite'
        enabled: true
      }
      {
        category: 'StorageDelete'
        enabled: true
      }
    ]
  }
}

// Host storage data roles for the app identity, on the host account only. Blob Data Owner is what the
// Functions host needs for identity-based AzureWebJobsStorage (its own leases and containers); it also
// covers the lock blobs (create, lease) and the replay tool's dead-letter reads and deletes.
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, storageBlobDataOwnerRoleId)
  scope: hostStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, storageQueueDataContributorRoleId)
  scope: hostStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributorRoleId)
  }
}

// The host keeps diagnostic events in table storage.
resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, principalId, storageTableDataContributorRoleId)
  scope: hostStorage
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
  }
}

module blobEndpoint 'private-endpoint.bicep' = {
  name: 'pe-blob-${name}'
  params: {
    location: location
    tags: tags
    name: 'pe-blob-${name}'
    subnetId: privateEndpointSubnetId
    targetResourceId: hostStorage.id
    groupId: 'blob'
    privateDnsZoneId: blobDnsZoneId
  }
}

module queueEndpoint 'private-endpoint.bicep' = {
  name: 'pe-queue-${name}'
  params: {
    location: location
    tags: tags
    name: 'pe-queue-${name}'
    subnetId: privateEndpointSubnetId
    targetResourceId: hostStorage.id
    groupId: 'queue'
    privateDnsZoneId: queueDnsZoneId
  }
}

module tableEndpoint 'private-endpoint.bicep' = {
  name: 'pe-table-${name}'
  params: {
    location: location
    tags: tags
    name: 'pe-table-${name}'
    subnetId: privateEndpointSubnetId
    targetResourceId: hostStorage.id
    groupId: 'table'
    privateDnsZoneId: tableDnsZoneId
  }
}

output id string = hostStorage.id
output name string = hostStorage.name
output deploymentContainerName string = deploymentContainer.name
output deadLetterContainerName string = deadLetterContainer.name
output poisonQueueName string = poisonQueue.name
output lockContainerName string = lockContainer.name
output failedEventsQueueName string = failedEventsQueue.name
output rotationQueueName string = rotationQueue.name
