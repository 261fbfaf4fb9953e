// Static hosting for the SPA: a storage account whose static website ($web container) serves
// web/dist plus a config.json with the API and hub URLs. ARM cannot switch the static website on
// (it is a blob-service data-plane property): README step "Upload the SPA" does it with
// `az storage blob service-properties update --static-website`.
param name string
param location string
param tags object
@description('Object id of whoever uploads the SPA (Storage Blob Data Contributor on this account); empty: none.')
param uploaderPrincipalId string = ''
@allowed(['User', 'Group', 'ServicePrincipal'])
param uploaderPrincipalType string = 'User'

// Storage Blob Data Contributor
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    // The static website endpoint is public by design; the blob endpoint stays private.
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
  }
}

resource uploader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(uploaderPrincipalId)) {
  name: guid(account.id, uploaderPrincipalId, storageBlobDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: uploaderPrincipalId
    principalType: uploaderPrincipalType
  }
}

var webEndpoint = account.properties.primaryEndpoints.web

output name string = account.name
// Without the trailing slash: an origin, as CORS compares it.
output origin string = endsWith(webEndpoint, '/') ? substring(webEndpoint, 0, length(webEndpoint) - 1) : webEndpoint
