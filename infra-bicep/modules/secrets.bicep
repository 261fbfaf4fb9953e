// Writes the secrets that exist only inside Azure into Key Vault: the Redis URL (with its access
// key) and the Application Insights connection string. The values are read here with listKeys()
// and reference(), so they never pass through a parameter or a deployment output.
param vaultName string
param redisName string
param appInsightsName string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource redis 'Microsoft.Cache/redisEnterprise@2025-04-01' existing = {
  name: redisName
}

resource redisDatabase 'Microsoft.Cache/redisEnterprise/databases@2025-04-01' existing = {
  parent: redis
  name: 'default'
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// rediss:// (TLS, Azure Managed Redis's port 10000); the key may hold '/', '+', '=': URL-encode it.
resource redisUrl 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'redis-url'
  properties: {
    value: 'rediss://:${uriComponent(redisDatabase.listKeys().primaryKey)}@${redis.properties.hostName}:${redisDatabase.properties.port}'
    contentType: 'text/plain'
  }
}

resource appInsightsConnectionString 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'appinsights-connection-string'
  properties: {
    value: appInsights.properties.ConnectionString
    contentType: 'text/plain'
  }
}

// Versionless URIs: the apps pick up a rotated secret on restart.
output redisUrlSecretUri string = '${vault.properties.vaultUri}secrets/${redisUrl.name}'
output appInsightsSecretUri string = '${vault.properties.vaultUri}secrets/${appInsightsConnectionString.name}'
