// Service Bus: the two queues of the workflow. Standard tier (sessions and duplicate detection
// need it); local (SAS) auth off: the handler and the Functions triggers use Entra ID.
param name string
param location string
param tags object
@description('Principal of the apps\' managed identity.')
param principalId string
param maxDeliveryCount int = 10
@description('Duplicate detection window (ISO 8601): a republished message with the same MessageId (= correlationId) inside it is dropped.')
param duplicateDetectionWindow string = 'PT10M'

// Azure Service Bus Data Sender / Data Receiver
var serviceBusDataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var serviceBusDataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'

resource namespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Standard' }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
  }
}

// order.accepted: intake publishes it with SessionId = userId, so each user's orders are
// processed strictly in order (OrderProcess has isSessionsEnabled: true).
resource orderAccepted 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: 'order.accepted'
  properties: {
    requiresSession: true
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: 'P14D'
  }
}

// order.processed is NOT session-enabled: OrderProcess writes it through the Functions Service
// Bus output binding, and a custom handler's output binding value is only the message body; it
// cannot set SessionId, and a session-enabled queue rejects messages without one. Per-user order
// does not matter here anyway: each notification carries its own status and statuses only move
// forward.
resource orderProcessed 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: namespace
  name: 'order.processed'
  properties: {
    requiresSession: false
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    lockDuration: 'PT1M'
    defaultMessageTimeToLive: 'P14D'
  }
}

// Least privilege, per queue: intake sends order.accepted, OrderProcess receives it and sends
// order.processed (output binding), OrderNotify receives order.processed.
resource sendAccepted 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(orderAccepted.id, principalId, serviceBusDataSender)
  scope: orderAccepted
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource receiveAccepted 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(orderAccepted.id, principalId, serviceBusDataReceiver)
  scope: orderAccepted
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource sendProcessed 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(orderProcessed.id, principalId, serviceBusDataSender)
  scope: orderProcessed
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

resource receiveProcessed 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(orderProcessed.id, principalId, serviceBusDataReceiver)
  scope: orderProcessed
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataReceiver)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output name string = namespace.name
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'
