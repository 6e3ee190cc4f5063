// Event Grid custom topic for the service's outcome events (SecretRotation.SecretRotated and
// SecretRotation.SecretRotationFailed, published by secret_rotation/eventgrid_outcomes.py). Entra-only:
// local (key/SAS) authentication is disabled and only the app identity may send, on this topic only.
// No public network access: the app publishes through the topic's private endpoint (Flex Consumption
// VNet integration routes all its outbound traffic into the VNet in both delivery modes).
// One subscription ships with it: failed outcomes go to a queue of the host storage account, and the
// alert on its matched-event count (modules/alerts.bicep) fires on outcome events, not only on traces.
param location string
param tags object
param name string
@description('Principal ID of the app identity, the only publisher.')
param publisherPrincipalId string
param logAnalyticsWorkspaceId string
param privateEndpointSubnetId string
param eventGridDnsZoneId string
param storageAccountName string
@description('Queue of the host storage account that receives failed-rotation outcome events.')
param failedEventsQueueName string
param maxDeliveryAttempts int
param eventTimeToLiveInMinutes int

// Built-in role definition IDs, from Microsoft's Azure built-in roles reference.
var eventGridDataSenderRoleId = 'd5a91429-5739-47e2-a06b-3470a27159e7'
var storageQueueDataMessageSenderRoleId = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'
// secret_rotation/eventgrid_outcomes.py: EVENT_TYPE_PREFIX + Status.FAILED (tests/infra compares them).
var failedEventType = 'SecretRotation.SecretRotationFailed'
var failedSubscriptionName = 'rotation-failed'
// Failed-outcome events are a record for operators, not work: they expire after 7 days.
var failedEventsTimeToLiveInSeconds = 604800

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' existing = {
  parent: storage
  name: 'default'
}

resource failedEventsQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' existing = {
  parent: queueService
  name: failedEventsQueueName
}

resource outcomeTopic 'Microsoft.EventGrid/topics@2025-02-15' = {
  name: name
  location: location
  tags: tags
  // The topic's own identity delivers to the failed-events queue (trusted-services exception of the
  // storage firewall); it holds no other role.
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    // The code publishes azure.eventgrid.EventGridEvent objects.
    inputSchema: 'EventGridSchema'
    disableLocalAuth: true
    publicNetworkAccess: 'Disabled'
    inboundIpRules: []
    minimumTlsVersionAllowed: '1.2'
  }
}

// The app may send events to this topic and nothing else (no receive, no management, no keys).
resource appDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outcomeTopic.id, publisherPrincipalId, eventGridDataSenderRoleId)
  scope: outcomeTopic
  properties: {
    principalId: publisherPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSenderRoleId)
  }
}

// The topic may only add messages to the failed-events queue.
resource topicQueueSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(failedEventsQueue.id, outcomeTopic.id, storageQueueDataMessageSenderRoleId)
  scope: failedEventsQueue
  properties: {
    principalId: outcomeTopic.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSenderRoleId)
  }
}

// Publish audit (DataPlaneRequests), publish and delivery failures, and metrics to Log Analytics.
resource topicDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: outcomeTopic
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'DataPlaneRequests'
        enabled: true
      }
      {
        category: 'PublishFailures'
        enabled: true
      }
      {
        category: 'DeliveryFailures'
        enabled: true
      }
    ]
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
  }
}

// Failed outcomes only. No dead-letter destination: the alert counts matched events whether or not
// delivery succeeds, and the eventgrid-deadletter container is for Key Vault events, which the replay
// tool re-drives onto the rotation queue (outcome events have no business there).
resource failedSubscription 'Microsoft.EventGrid/topics/eventSubscriptions@2025-02-15' = {
  parent: outcomeTopic
  name: failedSubscriptionName
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        failedEventType
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
          queueName: failedEventsQueueName
          queueMessageTimeToLiveInSeconds: failedEventsTimeToLiveInSeconds
        }
      }
    }
  }
  dependsOn: [
    topicQueueSender
  ]
}

module topicEndpoint 'private-endpoint.bicep' = {
  name: 'pe-topic-${name}'
  params: {
    location: location
    tags: tags
    name: 'pe-topic-${name}'
    subnetId: privateEndpointSubnetId
    targetResourceId: outcomeTopic.id
    groupId: 'topic'
    privateDnsZoneId: eventGridDnsZoneId
  }
}

output id string = outcomeTopic.id
output name string = outcomeTopic.name
output endpoint string = outcomeTopic.properties.endpoint
output failedSubscriptionName string = failedSubscription.name
