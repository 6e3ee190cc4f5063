// Alerts that need a human: a failed rotation (from its log line and from its outcome event),
// dead-lettered events, poison-queue messages and Key Vault access denied, all routed to one action
// group whose receivers are parameters.
param location string
param tags object
param resourceToken string
param emailAddresses array
param webhookUris array
param applicationInsightsId string
param logAnalyticsWorkspaceId string
param systemTopicId string
param poisonQueueName string
param outcomeTopicId string
@description('Event subscription of the outcome topic that matches SecretRotation.SecretRotationFailed only.')
param failedOutcomeSubscriptionName string

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'secrotate'
    enabled: true
    emailReceivers: [for (address, i) in emailAddresses: {
      name: 'email-${i}'
      emailAddress: address
      useCommonAlertSchema: true
    }]
    webhookReceivers: [for (uri, i) in webhookUris: {
      name: 'webhook-${i}'
      serviceUri: uri
      useCommonAlertSchema: true
    }]
  }
}

// One log line per rotation carries SecretRotated or SecretRotationFailed (custom dimension outcome).
resource rotationFailed 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-rotation-failed-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'Secret rotation failed'
    description: 'A rotation logged SecretRotationFailed; the secret keeps its old value and may expire.'
    severity: 1
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "SecretRotationFailed"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// The Functions host logs the poison queue's name when it gives up on a message after 5 dequeues.
resource poisonMessages 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-poison-queue-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'Rotation message moved to the poison queue'
    description: 'A rotation request failed repeatedly and was moved to ${poisonQueueName}; inspect and re-queue it.'
    severity: 1
    enabled: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      applicationInsightsId
    ]
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "${poisonQueueName}"'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

// AuditEvent (modules/keyvault-access.bicep) records each denied call with HTTP status 403.
// A new workspace has no AzureDiagnostics table until the vault's first audit record arrives, so the
// query would fail validation when the rule is created and fail the first `azd up`.
// skipQueryValidation creates the rule anyway; it evaluates once the table exists. The property is in
// ScheduledQueryRuleProperties at this api-version: Azure/bicep-types-az
// generated/monitor/microsoft.insights/2023-03-15-preview/types.md, and azure-rest-api-specs
// Microsoft.Insights/preview/2023-03-15-preview/scheduledQueryRule_API.json: "The flag which indicates
// whether the provided query should be validated or not. The default is false."
// tests/infra rule ALERT-EMPTY-WORKSPACE keeps it on every rule that queries the workspace.
resource vaultAccessDenied 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-keyvault-denied-${resourceToken}'
  location: location
  tags: tags
  properties: {
    displayName: 'Key Vault access denied'
    description: 'A caller was denied access to the vault (missing role, firewall or a probing attempt).'
    severity: 2
    enabled: true
    // Created even though a new workspace has no AzureDiagnostics table yet (see above the resource).
    skipQueryValidation: true
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    scopes: [
      logAnalyticsWorkspaceId
    ]
    criteria: {
      allOf: [
        {
          query: 'AzureDiagnostics | where ResourceProvider == "MICROSOFT.KEYVAULT" and Category == "AuditEvent" and httpStatusCode_d == 403'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}

resource deadLettered 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-dead-lettered-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid gave up delivering a Key Vault event; it is in the dead-letter container.'
    severity: 1
    enabled: true
    scopes: [
      systemTopicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'dead-lettered'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: false
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

// The same failure seen from its outcome event: the outcome topic's `rotation-failed` subscription
// matches SecretRotation.SecretRotationFailed only, so its matched-event count is the number of failed
// rotations published. Topic metrics carry no event-type dimension, hence the filtered subscription.
// Fires even when Application Insights ingestion lags or the trace was sampled away.
resource rotationFailedEvent 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'alert-rotation-failed-event-${resourceToken}'
  location: 'global'
  tags: tags
  properties: {
    description: 'A SecretRotation.SecretRotationFailed outcome event was published; the secret keeps its old value and may expire.'
    severity: 1
    enabled: true
    scopes: [
      outcomeTopicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'failed-outcome-events'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.EventGrid/topics'
          metricName: 'MatchedEventCount'
          dimensions: [
            {
              name: 'EventSubscriptionName'
              operator: 'Include'
              // The letter case Event Grid reports subscription names in is not documented: both.
              values: [
                failedOutcomeSubscriptionName
                toUpper(failedOutcomeSubscriptionName)
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    autoMitigate: false
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}
