// The one identity the service authenticates with (AZURE_CLIENT_ID and AzureWebJobsStorage__clientId).
// User-assigned so its role assignments exist before the app starts and survive app re-creation.
param location string
param tags object
param name string

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
