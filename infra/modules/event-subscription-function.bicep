// Public delivery mode only: the system topic pushes to the Event Grid trigger function. Deployed by the
// azd postdeploy hook (infra/hooks/postdeploy.sh), because Event Grid validates the endpoint when the
// subscription is created and the function only exists once the code is deployed.
param systemTopicName string
param functionAppName string
param storageAccountId string
param deadLetterContainerName string
param maxDeliveryAttempts int = 10
param eventTimeToLiveInMinutes int = 1440

// The function registered in function_app.py for Event Grid delivery.
var functionName = 'on_secret_near_expiry'

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource functionSubscription 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: systemTopic
  name: 'rotation-function'
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
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${app.id}/functions/${functionName}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: storageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}
