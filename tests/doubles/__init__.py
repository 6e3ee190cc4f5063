"""Local test doubles for Azure services (Key Vault secrets, managed identity) used by the local stack."""
