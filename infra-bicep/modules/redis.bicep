// Azure Cache for Redis: workflow state and the hub fan-out channel. TLS only (port 6380).
param name string
param location string
param tags object
@allowed(['Basic', 'Standard', 'Premium'])
param skuName string = 'Standard'
param capacity int = 1

resource redis 'Microsoft.Cache/redis@2024-03-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisVersion: '6'
  }
}

output name string = redis.name
output hostName string = redis.properties.hostName
output sslPort int = redis.properties.sslPort
