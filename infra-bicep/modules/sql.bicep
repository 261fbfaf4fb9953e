// Azure SQL with Microsoft Entra-only authentication: no SQL logins, no password anywhere.
// The administrator is a person or group (parameters); the apps' managed identity becomes a
// database user in the documented post-deploy step (README, "Grant the identity SQL access"):
//   CREATE USER [<identity name>] FROM EXTERNAL PROVIDER;
//   ALTER ROLE db_datareader ADD MEMBER [<identity name>];
//   ALTER ROLE db_datawriter ADD MEMBER [<identity name>];
//   ALTER ROLE db_ddladmin ADD MEMBER [<identity name>];   -- migrations run at start-up
param serverName string
param databaseName string = 'orders'
param location string
param tags object
@description('Display name of the Entra administrator (user or group).')
param adminLogin string
@description('Object id of the Entra administrator.')
param adminObjectId string
@allowed(['User', 'Group', 'Application'])
param adminPrincipalType string = 'Group'

resource server 'Microsoft.Sql/servers@2023-08-01-preview' = {
  name: serverName
  location: location
  tags: tags
  properties: {
    minimalTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    administrators: {
      administratorType: 'ActiveDirectory'
      azureADOnlyAuthentication: true
      login: adminLogin
      sid: adminObjectId
      principalType: adminPrincipalType
      tenantId: subscription().tenantId
    }
  }
}

// Flex Consumption and Container Apps egress from Azure addresses (no VNet here).
resource allowAzure 'Microsoft.Sql/servers/firewallRules@2023-08-01-preview' = {
  parent: server
  name: 'AllowAllWindowsAzureIps'
  properties: {
    startIpAddress: '0.0.0.0'
    endIpAddress: '0.0.0.0'
  }
}

resource database 'Microsoft.Sql/servers/databases@2023-08-01-preview' = {
  parent: server
  name: databaseName
  location: location
  tags: tags
  sku: { name: 'GP_S_Gen5', tier: 'GeneralPurpose', family: 'Gen5', capacity: 1 }
  properties: {
    autoPauseDelay: 60
    minCapacity: json('0.5')
  }
}

output serverName string = server.name
output fullyQualifiedDomainName string = server.properties.fullyQualifiedDomainName
output databaseName string = database.name
