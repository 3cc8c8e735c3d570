// Every role assignment, least privilege: each role is scoped to the one resource (or hub,
// or container) that needs it. Role ids are Azure built-in role definition ids.

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Principal id of the Event Grid system topic (dead-letter writer).')
param eventGridPrincipalId string

@description('Optional: the person or pipeline that runs deploy.sh, granted Key Vault Secrets Officer (bank keys) and blob upload to raw/. Empty: none.')
param operatorPrincipalId string

@description('Type of operatorPrincipalId.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param operatorPrincipalType string

@description('Storage account the app and Event Grid use.')
param storageAccountName string

@description('Event Hubs namespace.')
param eventHubsNamespaceName string

@description('Hub the app reads.')
param transactionsHubName string

@description('Hub the app writes alerts to.')
param alertsHubName string

@description('Key Vault with the app secrets.')
param keyVaultName string

@description('Application Insights component the app sends telemetry to.')
param appInsightsName string


@description('Container Event Grid dead-letters into.')
param deadLetterContainerName string

@description('Container operators upload transaction files into.')
param rawContainerName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
  resource blobService 'blobServices' existing = {
    name: 'default'
    resource deadLetter 'containers' existing = { name: deadLetterContainerName }
    resource raw 'containers' existing = { name: rawContainerName }
  }
}

resource namespace 'Microsoft.EventHub/namespaces@2024-01-01' existing = {
  name: eventHubsNamespaceName
  resource transactions 'eventhubs' existing = { name: transactionsHubName }
  resource alerts 'eventhubs' existing = { name: alertsHubName }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// The app: host storage (blob leases, deployment package, data) and the blob trigger's queues.
resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The app reads the transactions hub and writes only to the alerts hub.
resource appHubReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace::transactions.id, appPrincipalId, roles.eventHubsDataReceiver)
  scope: namespace::transactions
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
  }
}

resource appHubSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace::alerts.id, appPrincipalId, roles.eventHubsDataSender)
  scope: namespace::alerts
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
  }
}

// The app reads secrets (Key Vault references and bank keys); it never writes them.
resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// Telemetry with Entra ID (Application Insights has local auth disabled).
resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// Event Grid writes undeliverable events into the dead-letter container, nowhere else.
resource eventGridDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage::blobService::deadLetter.id, eventGridPrincipalId, roles.storageBlobDataContributor)
  scope: storage::blobService::deadLetter
  properties: {
    principalId: eventGridPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// The operator: manages the banks' keys (fraudops federated keys add) and uploads to raw/.
resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

resource operatorRawUpload 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(storage::blobService::raw.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: storage::blobService::raw
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}
