// The PostgreSQL operation-status custom role from main.bicep for the app identity, on the subscription:
// PostgreSQL answers a server update with subscription-level Azure-AsyncOperation and Location URLs, and
// ARM authorizes the poller's GETs over that scope. The role holds two read actions on operation statuses.
targetScope = 'subscription'

param principalId string
@description('Name (GUID) of the operation-status custom role created in main.bicep.')
param roleName string

resource operationStatusReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleName)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleName)
  }
}
