// A SQL server whose administrator password the service rotates: the custom role from main.bicep
// (server read and write only, never SQL Server Contributor), on this server only.
// The assignment uses the '<server>/providers/roleAssignments' form so that the server itself is not
// declared here: it belongs to its own team and template (auditing, threat detection, firewall).
param sqlServerName string
param principalId string
@description('Name (GUID) of the custom role definition created in main.bicep.')
param roleDefinitionName string

resource passwordOperator 'Microsoft.Sql/servers/providers/roleAssignments@2022-04-01' = {
  name: '${sqlServerName}/Microsoft.Authorization/${guid(resourceId('Microsoft.Sql/servers', sqlServerName), principalId, roleDefinitionName)}'
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
  }
}
