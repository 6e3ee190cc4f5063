// A new vault that meets the Key Vault security baseline: RBAC authorization (access policies are
// ignored by RBAC vaults, so none are declared), soft delete with 90 days' retention, purge protection,
// firewall default Deny, and no public network access unless a deployer IP is let in.
param location string
param tags object
param name string
param deployerIpAddress string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_189: publicNetworkAccess is 'Disabled' unless deployerIpAddress is set, and then the firewall (defaultAction Deny) admits that one IP only. checkov cannot evaluate the conditional (its check raises on it); tests/infra rule KV-NETWORK checks the expression instead.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: empty(deployerIpAddress) ? 'Disabled' : 'Enabled'
    networkAcls: {
      defaultAction: 'Deny'
      bypass: 'AzureServices'
      ipRules: empty(deployerIpAddress) ? [] : [
        {
          value: deployerIpAddress
        }
      ]
      virtualNetworkRules: []
    }
  }
}

output id string = vault.id
output uri string = vault.properties.vaultUri
