// Log Analytics + workspace-based Application Insights.
param logAnalyticsName string
param appInsightsName string
param location string
param tags object
@description('Principal that publishes telemetry with Entra ID (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).')
param principalId string

// Monitoring Metrics Publisher
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // The OpenTelemetry collector's azuremonitor exporter authenticates with the connection
    // string, so local auth stays on; the Functions host itself uses Entra ID.
    DisableLocalAuth: false
  }
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output workspaceName string = workspace.name
output appInsightsName string = appInsights.name
