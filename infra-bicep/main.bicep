// Contoso Orders in Azure: Functions (Flex Consumption, custom handler), Service Bus, Azure SQL
// (Entra-only), Azure Managed Redis, the SignalR hub in Container Apps, the SPA on a storage
// static website, Log Analytics + Application Insights, Key Vault, one user-assigned identity.
// Deploy with `az deployment group create` (infra-bicep/README.md).
targetScope = 'resourceGroup'

@minLength(1)
@maxLength(12)
@description('Short environment name (dev, test, prod, ...): part of every resource name.')
param environmentName string

@description('Region for every resource (one that offers Flex Consumption: `az functionapp list-flexconsumption-locations`).')
param location string = resourceGroup().location

@description('Hub image, e.g. <registry>.azurecr.io/signalr-hub:<tag>. Empty on the first run: the registry exists only after it, and `az acr build` pushes the image.')
param hubImage string = ''

@description('OIDC issuer URL the API and the hub accept tokens from, e.g. https://login.microsoftonline.com/<tenant-id>/v2.0.')
param jwtIssuer string

@description('Expected audience (aud) of the access tokens, e.g. the API app registration\'s client id or api://... URI.')
param jwtAudience string

@description('SPA sign-in: authority (usually the issuer), client id and scope, written into the SPA\'s config.json (deployment output spaConfig).')
param spaAuthority string = jwtIssuer
param spaClientId string
param spaScope string = 'openid profile'

@description('Entra administrator of the SQL server (a group is best): display name and object id.')
param sqlAdminLogin string
param sqlAdminObjectId string
@allowed(['User', 'Group', 'Application'])
param sqlAdminPrincipalType string = 'Group'

@description('Object id of whoever uploads the SPA with `az storage blob upload-batch --auth-mode login` (Storage Blob Data Contributor on the web account); empty: none.')
param deployerPrincipalId string = ''
@allowed(['User', 'Group', 'ServicePrincipal'])
param deployerPrincipalType string = 'User'

@minValue(2)
param hubMinReplicas int = 2
param hubMaxReplicas int = 10
param hubConcurrentConnections int = 1000
param collectorImage string = 'otel/opentelemetry-collector-contrib:0.111.0'
@allowed(['Balanced_B0', 'Balanced_B1', 'Balanced_B3', 'Balanced_B5'])
param redisSku string = 'Balanced_B0'

// Resource names allow lower-case letters, digits and hyphens (some not even hyphens).
var env = toLower(environmentName)
var token = take(uniqueString(subscription().id, resourceGroup().id, env), 6)
var prefix = 'orders-${env}'
var compact = replace('orders${env}${token}', '-', '')
var tags = {
  app: 'contoso-orders'
  environment: env
}
var deploymentContainerName = 'app-package'

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: {
    name: 'id-${prefix}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    logAnalyticsName: 'log-${prefix}-${token}'
    appInsightsName: 'appi-${prefix}-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: take('kv-${compact}', 24)
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: take('st${compact}', 24)
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    principalId: identity.outputs.principalId
  }
}

module web 'modules/web.bicep' = {
  name: 'web'
  params: {
    name: take('web${compact}', 24)
    location: location
    tags: tags
    uploaderPrincipalId: deployerPrincipalId
    uploaderPrincipalType: deployerPrincipalType
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  params: {
    name: 'sb-${prefix}-${token}'
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module sql 'modules/sql.bicep' = {
  name: 'sql'
  params: {
    serverName: 'sql-${prefix}-${token}'
    location: location
    tags: tags
    adminLogin: sqlAdminLogin
    adminObjectId: sqlAdminObjectId
    adminPrincipalType: sqlAdminPrincipalType
  }
}

module redis 'modules/redis.bicep' = {
  name: 'redis'
  params: {
    name: 'redis-${prefix}-${token}'
    location: location
    tags: tags
    skuName: redisSku
  }
}

module secrets 'modules/secrets.bicep' = {
  name: 'secrets'
  params: {
    vaultName: keyVault.outputs.name
    redisName: redis.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
  }
}

module registry 'modules/registry.bicep' = {
  name: 'registry'
  params: {
    name: take('cr${compact}', 50)
    location: location
    tags: tags
    principalId: identity.outputs.principalId
  }
}

// No password: Entra ID with the managed identity (SQLSERVER_AUTH=entra, AZURE_CLIENT_ID).
var sqlConnectionString = 'Server=tcp:${sql.outputs.fullyQualifiedDomainName},1433;Database=${sql.outputs.databaseName};Encrypt=true;TrustServerCertificate=false'

module containerApps 'modules/containerapps.bicep' = {
  name: 'containerapps'
  params: {
    environmentName: 'cae-${prefix}'
    hubAppName: 'ca-hub-${env}'
    collectorAppName: 'ca-otel-${env}'
    location: location
    tags: tags
    logAnalyticsName: monitoring.outputs.workspaceName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    registryLoginServer: registry.outputs.loginServer
    hubImage: hubImage
    collectorImage: collectorImage
    hubMinReplicas: hubMinReplicas
    hubMaxReplicas: hubMaxReplicas
    hubConcurrentConnections: hubConcurrentConnections
    redisUrlSecretUri: secrets.outputs.redisUrlSecretUri
    appInsightsSecretUri: secrets.outputs.appInsightsSecretUri
    spaOrigin: web.outputs.origin
    jwtIssuer: jwtIssuer
    jwtAudience: jwtAudience
    sqlConnectionString: sqlConnectionString
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  params: {
    planName: 'asp-${prefix}-${token}'
    appName: 'func-${prefix}-${token}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    storageAccountName: storage.outputs.name
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    redisUrlSecretUri: secrets.outputs.redisUrlSecretUri
    appInsightsSecretUri: secrets.outputs.appInsightsSecretUri
    otlpEndpoint: containerApps.outputs.otlpEndpoint
    spaOrigin: web.outputs.origin
    jwtIssuer: jwtIssuer
    jwtAudience: jwtAudience
    sqlConnectionString: sqlConnectionString
  }
}

var apiBaseUrl = 'https://${functionApp.outputs.defaultHostName}'

output functionAppName string = functionApp.outputs.name
output apiBaseUrl string = apiBaseUrl
output hubUrl string = containerApps.outputs.hubUrl
output registryName string = registry.outputs.name
output registryLoginServer string = registry.outputs.loginServer
output webStorageAccountName string = web.outputs.name
output webOrigin string = web.outputs.origin
output sqlServerName string = sql.outputs.serverName
output sqlServerFqdn string = sql.outputs.fullyQualifiedDomainName
output sqlDatabaseName string = sql.outputs.databaseName
output identityName string = identity.outputs.name
output identityClientId string = identity.outputs.clientId
output serviceBusNamespace string = serviceBus.outputs.fullyQualifiedNamespace
// The SPA's config.json (web/src/config.ts): written next to index.html by the README's upload step.
output spaConfig object = {
  apiBaseUrl: apiBaseUrl
  hubUrl: containerApps.outputs.hubUrl
  auth: {
    mode: 'oidc'
    authority: spaAuthority
    clientId: spaClientId
    scope: spaScope
  }
}
