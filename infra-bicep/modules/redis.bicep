// Azure Managed Redis (Microsoft.Cache/redisEnterprise): workflow state and the hub fan-out
// channel. Not Azure Cache for Redis: its Basic/Standard/Premium tiers retire on 2028-09-30 and
// new caches are blocked in phases from 2026-04-01 (Azure Updates 499577); Microsoft's
// replacement is Azure Managed Redis. TLS only, port 10000. The EnterpriseCluster policy gives
// one endpoint that non-cluster clients (redis-rs's connection manager, pub/sub) can use.
param name string
param location string
param tags object
@allowed(['Balanced_B0', 'Balanced_B1', 'Balanced_B3', 'Balanced_B5'])
param skuName string = 'Balanced_B0'

resource cluster 'Microsoft.Cache/redisEnterprise@2025-04-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: skuName }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-04-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'EnterpriseCluster'
    // Workflow keys carry TTLs; never evict one early.
    evictionPolicy: 'NoEviction'
    // The handler and the hub sign in with the access key from Key Vault (secrets.bicep).
    accessKeysAuthentication: 'Enabled'
  }
}

output name string = cluster.name
output hostName string = cluster.properties.hostName
output port int = database.properties.port
