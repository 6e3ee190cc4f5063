// A storage account whose keys the service rotates (storage-account-key), on this account only: list and
// regenerate its keys (Storage Account Key Operator Service Role: listkeys and regeneratekey actions only)
// and read its properties (Reader), because the rotator looks up the account's blob endpoint
// (storage_accounts.get_properties) to verify the new key with a Shared Key request. Reader grants reads
// of the account's configuration, never its keys or data.
param storageAccountName string
param principalId string

// Built-in role definition IDs, from Microsoft's Azure built-in roles reference.
var storageAccountKeyOperatorRoleId = '81a9662b-bebf-436f-a333-f67b29880f12'
var readerRoleId = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

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

resource propertiesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(target.id, principalId, readerRoleId)
  scope: target
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
  }
}
