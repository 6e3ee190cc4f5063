// An Azure Database for PostgreSQL flexible server whose administrator password the service rotates
// (postgres-flexible-admin): the password custom role from main.bicep (server read and write only) on this
// server only. The operation-status role is on the subscription (operation-status-reader.bicep), where
// PostgreSQL's polling URLs live. The server is referenced, never declared: it belongs to its own template.
param serverName string
param principalId string
@description('Name (GUID) of the password custom role created in main.bicep.')
param passwordRoleName string

// api-version 2024-08-01: Azure/bicep-types-az generated/postgresql/microsoft.dbforpostgresql/2024-08-01.
resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' existing = {
  name: serverName
}

resource passwordOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(server.id, principalId, passwordRoleName)
  scope: server
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', passwordRoleName)
  }
}
