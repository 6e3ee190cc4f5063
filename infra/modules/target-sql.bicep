// An Azure SQL logical server whose administrator password the service rotates (azure-sql-admin): the
// password custom role from main.bicep (server read and write only, never SQL Server Contributor) on this
// server only, and the operation-status custom role on the server's resource group, where SQL's polling
// URLs live (main.bicep says why). The server assignment uses the '<server>/providers/roleAssignments'
// form so that the server itself is not declared here: it belongs to its own team and template (auditing,
// threat detection, firewall).
param sqlServerName string
param principalId string
@description('Name (GUID) of the password custom role created in main.bicep.')
param passwordRoleName string
@description('Name (GUID) of the SQL operation-status custom role created in main.bicep.')
param operationStatusRoleName string

resource passwordOperator 'Microsoft.Sql/servers/providers/roleAssignments@2022-04-01' = {
  name: '${sqlServerName}/Microsoft.Authorization/${guid(resourceId('Microsoft.Sql/servers', sqlServerName), principalId, passwordRoleName)}'
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', passwordRoleName)
  }
}

// No scope: this module is deployed to the server's resource group, the scope of the polling URLs.
resource operationStatusReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, operationStatusRoleName)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', operationStatusRoleName)
  }
}
