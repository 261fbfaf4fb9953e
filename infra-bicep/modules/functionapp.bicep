// The function app on the Flex Consumption plan (Linux), runtime `custom`: the Rust `handler`
// custom handler from dist/functionapp.zip (scripts/package). Flex Consumption runs custom
// handlers (runtime name `custom` in functionAppConfig.runtime; see infra-bicep/README.md).
param planName string
param appName string
param location string
param tags object
param identityId string
param identityClientId string
param deploymentContainerUrl string
param storageAccountName string
param serviceBusNamespace string
param redisUrlSecretUri string
param appInsightsSecretUri string
param otlpEndpoint string
param spaOrigin string
param jwtIssuer string
param jwtAudience string
param sqlConnectionString string
// 512 MB arrived after the preview (Learn: flex-consumption-plan, "512 MB, 2,048 MB, and
// 4,096 MB"); the handler needs far less than 512.
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100
@description('Version string of the Flex Consumption `custom` runtime (`az functionapp list-flexconsumption-runtimes --location <region> --runtime custom`).')
param customRuntimeVersion string = '1.0'

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in app settings resolve with this identity.
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
      }
      runtime: {
        name: 'custom'
        version: customRuntimeVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      // On Linux Consumption and Flex Consumption the Functions host always runs its own CORS
      // middleware from these settings (JobHostCorsMiddleware, Azure/azure-functions-host
      // WebScriptHostBuilderExtension.cs) and answers every preflight itself: without them an
      // SPA on another origin cannot POST an order. On actual responses it sets the same
      // Access-Control-Allow-Origin the handler sets (API_CORS_ORIGINS below), and the
      // handler's Access-Control-Expose-Headers pass through (the platform policy exposes none;
      // read from ASP.NET Core's CorsService, not verified).
      cors: {
        allowedOrigins: [spaOrigin]
        supportCredentials: false
      }
      // Flex Consumption: FUNCTIONS_WORKER_RUNTIME and FUNCTIONS_EXTENSION_VERSION are not app
      // settings (functionAppConfig.runtime replaces them).
      appSettings: [
        // The Functions host's own storage, identity-based.
        { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: '@Microsoft.KeyVault(SecretUri=${appInsightsSecretUri})' }
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
        // Service Bus, identity-based: read by the serviceBusTrigger/serviceBus bindings and by
        // the handler, which publishes order.accepted through the Service Bus REST API.
        { name: 'ServiceBusConnection__fullyQualifiedNamespace', value: serviceBusNamespace }
        { name: 'ServiceBusConnection__credential', value: 'managedidentity' }
        { name: 'ServiceBusConnection__clientId', value: identityClientId }
        { name: 'QUEUE_TRANSPORT', value: 'servicebus' }
        // The handler listens on FUNCTIONS_CUSTOMHANDLER_PORT (set by the host) on loopback.
        { name: 'HOST', value: '127.0.0.1' }
        // Unused with oidc + sqlserver, but the app package is read-only: keep scratch in /tmp.
        { name: 'DATA_DIR', value: '/tmp/orders-data' }
        { name: 'AUTH_MODE', value: 'oidc' }
        { name: 'JWT_ISSUER', value: jwtIssuer }
        { name: 'JWT_AUDIENCE', value: jwtAudience }
        { name: 'JWKS_MIN_REFRESH_SECS', value: '10' }
        // The SPA (storage static website) calls the API from this other origin: the handler
        // answers its preflights and adds the CORS headers for it, and for no other origin.
        { name: 'API_CORS_ORIGINS', value: spaOrigin }
        // Past this many API requests in progress, the handler sheds load: 503 + Retry-After.
        { name: 'API_MAX_CONCURRENT_REQUESTS', value: '512' }
        { name: 'SQL_PROVIDER', value: 'sqlserver' }
        { name: 'SQLSERVER_CONNECTION_STRING', value: sqlConnectionString }
        { name: 'SQLSERVER_AUTH', value: 'entra' }
        { name: 'AZURE_CLIENT_ID', value: identityClientId }
        { name: 'REDIS_URL', value: '@Microsoft.KeyVault(SecretUri=${redisUrlSecretUri})' }
        { name: 'FANOUT_CHANNEL_PREFIX', value: 'orders:' }
        { name: 'WORKFLOW_TTL_SECS', value: '3600' }
        { name: 'IDEMPOTENCY_TTL_SECS', value: '86400' }
        { name: 'LOG_FORMAT', value: 'json' }
        { name: 'RUST_LOG', value: 'info' }
        { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: otlpEndpoint }
        { name: 'OTEL_SERVICE_NAME', value: 'orders-functions' }
      ]
    }
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
