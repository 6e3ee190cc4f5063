// Deployed where the vault lives (new or existing): the app identity's data-plane role on this vault
// only, the optional secrets administrator (main.bicep passes it for an existing vault only when
// grantSecretsAdminOnExistingVault is set), AuditEvent logs to Log Analytics, and the vault's region
// (its Event Grid system topic must be created there).
param vaultName string
param principalId string
@description('Object ID of a person or group granted Key Vault Secrets Officer on this vault. Empty: none.')
param secretsAdminPrincipalId string
param logAnalyticsWorkspaceId string

// Built-in role definition ID, from Microsoft's Azure built-in roles reference. Secrets Officer and not
// Secrets User: the service writes new versions and the pending companion secret. For a stricter setup,
// assign it per secret instead (docs/security.md).
var keyVaultSecretsOfficerRoleId = 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource appSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, principalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
  }
}

resource adminSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(secretsAdminPrincipalId)) {
  name: guid(vault.id, secretsAdminPrincipalId, keyVaultSecretsOfficerRoleId)
  scope: vault
  properties: {
    principalId: secretsAdminPrincipalId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsOfficerRoleId)
  }
}

// AuditEvent records every data-plane call (who read, set or was denied which secret).
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        category: 'AuditEvent'
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

output vaultLocation string = vault.location
