// A storage account whose keys the service rotates: list and regenerate keys on this account only.
param storageAccountName string
param principalId string

// Built-in role definition ID, from Microsoft's Azure built-in roles reference.
var storageAccountKeyOperatorRoleId = '81a9662b-bebf-436f-a333-f67b29880f12'

resource target 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource keyOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(target.id, principalId, storageAccountKeyOperatorRoleId)
  scope: target
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageAccountKeyOperatorRoleId)
  }
}
