// The vault's Event Grid system topic and, in private mode, its subscription delivering to the rotation
// queue. The topic's own managed identity writes to the queue and to the dead-letter container; the
// public mode's subscription to the function is event-subscription-function.bicep (created after deploy).
param location string
param tags object
param name string
param vaultResourceId string
@description('true: private mode, deliver to the Storage queue. false: the azd postdeploy hook subscribes the function.')
param deliverToQueue bool
param storageAccountName string
param rotationQueueName string
param deadLetterContainerName string
param maxDeliveryAttempts int
param eventTimeToLiveInMinutes int

// Built-in role definition IDs, from Microsoft's Azure built-in roles reference.
var storageQueueDataMessageSenderRoleId = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
var storageBlobDataContributorRoleId = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource rotationQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: rotationQueueName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: vaultResourceId
    topicType: 'Microsoft.KeyVault.vaults'
  }
}

// The topic may only add messages to the rotation queue and write dead letters to their container.
resource topicQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(rotationQueue.id, systemTopic.id, storageQueueDataMessageSenderRoleId)
  scope: rotationQueue
  properties: {
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSenderRoleId)
  }
}

resource topicDeadLetterWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, systemTopic.id, storageBlobDataContributorRoleId)
  scope: deadLetterContainer
  properties: {
    principalId: systemTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributorRoleId)
  }
}

resource queueSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (deliverToQueue) {
  parent: systemTopic
  name: 'rotation-queue'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    // Never SecretNewVersionCreated: the service writes new versions and would trigger itself.
    filter: {
      includedEventTypes: [
        'Microsoft.KeyVault.SecretNearExpiry'
        'Microsoft.KeyVault.SecretExpired'
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deliveryWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storage.id
          queueName: rotationQueueName
          // -1: the message never expires in the queue; the worker or the poison queue disposes of it.
          queueMessageTimeToLiveInSeconds: -1
        }
      }
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
  dependsOn: [
    topicQueueSender
    topicDeadLetterWriter
  ]
}

output systemTopicId string = systemTopic.id
output systemTopicName string = systemTopic.name
