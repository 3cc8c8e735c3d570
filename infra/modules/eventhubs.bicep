// Event Hubs: `transactions` (the scoring stream's input) and `fraud-alerts` (its output).
// SAS (local) auth is off; the app connects with its managed identity.

@description('Namespace name (6-50 characters).')
@minLength(6)
@maxLength(50)
param namespaceName string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Standard is the smallest tier with consumer groups beyond $Default; Premium isolates tenants.')
@allowed(['Standard', 'Premium'])
param skuName string

@description('Throughput units (Standard) or processing units (Premium).')
@minValue(1)
param capacity int

@description('Partitions of the transactions hub: the most Functions instances that read it in parallel.')
@minValue(1)
@maxValue(32)
param partitionCount int

@description('Days events stay in the hubs (replay window after an outage).')
@minValue(1)
@maxValue(7)
param retentionDays int

@description('Name of the input hub (EVENTHUB_NAME).')
param transactionsHubName string

@description('Name of the alerts hub (FRAUD_ALERTS_HUB).')
param alertsHubName string

@description('The app\'s consumer group on the input hub (EVENTHUB_CONSUMER_GROUP).')
param consumerGroupName string

@description('Private networking (main.bicep\'s vnetEnabled): close the public endpoint; the apps reach the namespace through its private endpoint, and so must every sender of transactions. false (the default): public endpoint, Entra ID and RBAC the gate (SAS is off).')
param privateNetworking bool = false

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: { name: skuName, tier: skuName, capacity: capacity }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    zoneRedundant: true
  }
}

resource transactions 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: transactionsHubName
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: retentionDays
  }
}

resource alerts 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: namespace
  name: alertsHubName
  properties: {
    partitionCount: 2
    messageRetentionInDays: retentionDays
  }
}

resource consumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: transactions
  name: consumerGroupName
  properties: {
    userMetadata: 'The fraud-scoring function app (score_stream).'
  }
}

@description('Namespace resource id (its private endpoint).')
output id string = namespace.id

@description('Namespace name (role assignments).')
output namespaceName string = namespace.name

@description('Fully qualified namespace: EVENTHUB__fullyQualifiedNamespace.')
output fullyQualifiedNamespace string = '${namespace.name}.servicebus.windows.net'

@description('Input hub name.')
output transactionsHubName string = transactions.name

@description('Alerts hub name.')
output alertsHubName string = alerts.name

@description('Consumer group the app reads with.')
output consumerGroupName string = consumerGroup.name
