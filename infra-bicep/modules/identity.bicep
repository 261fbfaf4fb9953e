// The one user-assigned managed identity the function app and the hub run as. Every data-plane
// permission it has is a role assignment made next to the resource it applies to (see README).
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
