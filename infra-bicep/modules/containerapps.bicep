// Container Apps: the environment, the SignalR hub (>= 2 replicas, scaled on concurrent
// connections) and an OpenTelemetry collector that forwards the apps' OTLP traces to
// Application Insights.
param environmentName string
param hubAppName string
param collectorAppName string
param location string
param tags object
param logAnalyticsName string
param identityId string
param identityClientId string
param registryLoginServer string
@description('Hub image; empty deploys no hub yet (first run, before `az acr build`).')
param hubImage string
param collectorImage string
param hubMinReplicas int
param hubMaxReplicas int
@description('Concurrent HTTP requests per replica before scaling out; every WebSocket or long poll is one open request.')
param hubConcurrentConnections int
param redisUrlSecretUri string
param appInsightsSecretUri string
param spaOrigin string
param jwtIssuer string
param jwtAudience string
param sqlConnectionString string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: logAnalyticsName
}

resource managedEnvironment 'Microsoft.App/managedEnvironments@2024-03-01' = {
  name: environmentName
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: {
      destination: 'log-analytics'
      logAnalyticsConfiguration: {
        customerId: workspace.properties.customerId
        sharedKey: workspace.listKeys().primarySharedKey
      }
    }
  }
}

resource collector 'Microsoft.App/containerApps@2024-03-01' = {
  name: collectorAppName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    managedEnvironmentId: managedEnvironment.id
    configuration: {
      // Reachable by the Flex Consumption app, which is not in a virtual network.
      ingress: {
        external: true
        targetPort: 4318
        transport: 'http'
        allowInsecure: false
      }
      secrets: [
        {
          name: 'otel-config'
          value: loadTextContent('../otel-collector-azure.yaml')
        }
        {
          name: 'appinsights-connection-string'
          keyVaultUrl: appInsightsSecretUri
          identity: identityId
        }
      ]
    }
    template: {
      containers: [
        {
          name: 'otel-collector'
          image: collectorImage
          args: ['--config=/etc/otelcol/config.yaml']
          env: [
            { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', secretRef: 'appinsights-connection-string' }
          ]
          resources: { cpu: json('0.25'), memory: '0.5Gi' }
          volumeMounts: [
            { volumeName: 'config', mountPath: '/etc/otelcol' }
          ]
        }
      ]
      volumes: [
        {
          name: 'config'
          storageType: 'Secret'
          secrets: [
            { secretRef: 'otel-config', path: 'config.yaml' }
          ]
        }
      ]
      scale: { minReplicas: 1, maxReplicas: 3 }
    }
  }
}

var otlpEndpoint = 'https://${collector.properties.configuration.ingress.fqdn}'

resource hubApp 'Microsoft.App/containerApps@2024-03-01' = if (!empty(hubImage)) {
  name: hubAppName
  location: location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    managedEnvironmentId: managedEnvironment.id
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: {
        external: true
        targetPort: 7072
        // auto: HTTP/1.1 with WebSocket upgrades.
        transport: 'auto'
        allowInsecure: false
        // No affinity: fan-out goes through Redis and the SPA connects with skipNegotiation
        // (WebSockets only), so no negotiate state ties a client to one replica. A client that
        // negotiates (e.g. for Long Polling) would need 'sticky'.
        stickySessions: { affinity: 'none' }
      }
      registries: [
        { server: registryLoginServer, identity: identityId }
      ]
      secrets: [
        { name: 'redis-url', keyVaultUrl: redisUrlSecretUri, identity: identityId }
      ]
    }
    template: {
      // SIGTERM: the hub closes every connection with allowReconnect, then exits.
      terminationGracePeriodSeconds: 30
      containers: [
        {
          name: 'signalr-hub'
          image: hubImage
          // Sized for HUB_MAX_CONNECTIONS (50,000): about 7.6 KiB each (390 MiB in all) and, at
          // 1,000 notifications/s with every client's keep-alive, about 0.6 of a core
          // (scripts/bench-hub at 19,000, projected; README "Hub").
          resources: { cpu: json('1.0'), memory: '2Gi' }
          env: [
            { name: 'HOST', value: '0.0.0.0' }
            { name: 'HUB_PORT', value: '7072' }
            { name: 'DATA_DIR', value: '/data' }
            { name: 'AUTH_MODE', value: 'oidc' }
            { name: 'JWT_ISSUER', value: jwtIssuer }
            { name: 'JWT_AUDIENCE', value: jwtAudience }
            { name: 'JWKS_MIN_REFRESH_SECS', value: '10' }
            { name: 'SQL_PROVIDER', value: 'sqlserver' }
            { name: 'SQLSERVER_CONNECTION_STRING', value: sqlConnectionString }
            { name: 'SQLSERVER_AUTH', value: 'entra' }
            { name: 'AZURE_CLIENT_ID', value: identityClientId }
            { name: 'REDIS_URL', secretRef: 'redis-url' }
            { name: 'FANOUT_CHANNEL_PREFIX', value: 'orders:' }
            { name: 'HUB_CORS_ORIGINS', value: spaOrigin }
            { name: 'HUB_KEEP_ALIVE_SECS', value: '15' }
            { name: 'HUB_CLIENT_TIMEOUT_SECS', value: '30' }
            { name: 'HUB_HANDSHAKE_TIMEOUT_SECS', value: '15' }
            { name: 'HUB_LONG_POLL_SECS', value: '90' }
            { name: 'HUB_MAX_MESSAGE_BYTES', value: '32768' }
            { name: 'HUB_MAX_CONNECTIONS', value: '50000' }
            { name: 'HUB_SEND_QUEUE', value: '256' }
            { name: 'HUB_INVOCATIONS_PER_SEC', value: '20' }
            { name: 'HUB_INVOCATION_BURST', value: '40' }
            { name: 'LOG_FORMAT', value: 'json' }
            { name: 'RUST_LOG', value: 'info' }
            { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: otlpEndpoint }
            { name: 'OTEL_SERVICE_NAME', value: 'signalr-hub' }
          ]
          probes: [
            {
              type: 'Liveness'
              httpGet: { path: '/hubs/health', port: 7072 }
              periodSeconds: 10
              failureThreshold: 3
            }
            {
              type: 'Readiness'
              httpGet: { path: '/hubs/health', port: 7072 }
              periodSeconds: 5
              failureThreshold: 2
            }
          ]
        }
      ]
      scale: {
        minReplicas: hubMinReplicas
        maxReplicas: hubMaxReplicas
        rules: [
          {
            name: 'concurrent-connections'
            http: {
              metadata: {
                concurrentRequests: string(hubConcurrentConnections)
              }
            }
          }
        ]
      }
    }
  }
}

output environmentName string = managedEnvironment.name
output otlpEndpoint string = otlpEndpoint
output hubUrl string = empty(hubImage) ? '' : 'https://${hubApp.properties.configuration.ingress.fqdn}/hubs/order-status'
