// Microsoft Defender for Key Vault: alerts on unusual access (e.g. from a Tor exit node or an unusual
// identity). A subscription-level plan, so main.bicep deploys this only when enableDefenderForKeyVault.
targetScope = 'subscription'

resource keyVaultPlan 'Microsoft.Security/pricings@2024-01-01' = {
  // checkov:skip=CKV_AZURE_84: this resource is the Key Vault plan; checkov applies its Defender for Storage check to every pricings resource. Defender for Storage is a separate plan and the deployer's decision (docs/security.md).
  name: 'KeyVaults'
  properties: {
    pricingTier: 'Standard'
    subPlan: 'PerKeyVault'
  }
}
