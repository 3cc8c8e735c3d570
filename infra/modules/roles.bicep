// Every role assignment, least privilege: each role is scoped to the one resource (or hub,
// or container) that needs it. Role ids are Azure built-in role definition ids.
// Storage is two accounts (storage.bicep): the host's own, where the Functions host needs
// Storage Blob Data Owner, and the data account, where the app's identity holds one role per
// data container and none on the account itself or on the deployment package.

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Principal id of the deployment identity: the Flex Consumption platform writes and reads the code package with it; the app\'s code never uses it.')
param deployPrincipalId string

@description('Principal id of the Event Grid system topic (dead-letter writer).')
param eventGridPrincipalId string

@description('Optional: the person or pipeline that runs deploy.sh, granted Key Vault Secrets Officer (bank keys) and blob upload to raw/. Empty: none.')
param operatorPrincipalId string

@description('Type of operatorPrincipalId.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param operatorPrincipalType string

@description('The Functions host\'s storage account (AzureWebJobsStorage): host state only.')
param hostStorageAccountName string

@description('The data storage account (DataStorage): the data containers and the code package.')
param dataStorageAccountName string

@description('The account holding the audit chain\'s anchored heads (its one container, anchors: WORM, append-only).')
param anchorStorageAccountName string

@description('The data containers the app reads and writes (Storage Blob Data Contributor on each).')
param dataContainerNames array

@description('The blob trigger\'s container: Storage Blob Data Owner, as the Functions blob extension requires of a trigger connection, on this container only.')
param triggerContainerName string

@description('Container the platform deploys the code package from (the deployment identity only).')
param deploymentContainerName string

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

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
  resource blobService 'blobServices' existing = {
    name: 'default'
    resource deadLetter 'containers' existing = { name: deadLetterContainerName }
    resource trigger 'containers' existing = { name: triggerContainerName }
    resource deployment 'containers' existing = { name: deploymentContainerName }
  }
}

resource anchorStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: anchorStorageAccountName
  resource blobService 'blobServices' existing = {
    name: 'default'
    resource anchors 'containers' existing = { name: 'anchors' }
  }
}

resource dataContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for container in dataContainerNames: {
    parent: dataStorage::blobService
    name: container
  }
]

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

// The Functions host: its own account (blob leases, timers' schedule state, keys) and queues.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: hostStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The app's data: read and write blobs in each data container, nothing on the account (no container
// creation or deletion, no access to app-package).
resource appDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (container, i) in dataContainerNames: {
    name: guid(dataContainers[i].id, appPrincipalId, roles.storageBlobDataContributor)
    scope: dataContainers[i]
    properties: {
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    }
  }
]

// The audit heads' anchor: read and append in its one container; its WORM policy refuses every other write.
resource appAnchorContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(anchorStorage::blobService::anchors.id, appPrincipalId, roles.storageBlobDataContributor)
  scope: anchorStorage::blobService::anchors
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// The blob trigger's connection (DataStorage): the extension asks Owner of a trigger connection and
// queue access for its poison queue; Owner is scoped to the trigger's container.
resource triggerBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage::blobService::trigger.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: dataStorage::blobService::trigger
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource triggerQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: dataStorage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The platform writes the published package and reads it at start-up with the deployment identity.
resource deployPackage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage::blobService::deployment.id, deployPrincipalId, roles.storageBlobDataContributor)
  scope: dataStorage::blobService::deployment
  properties: {
    principalId: deployPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
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
  name: guid(dataStorage::blobService::deadLetter.id, eventGridPrincipalId, roles.storageBlobDataContributor)
  scope: dataStorage::blobService::deadLetter
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
  name: guid(dataStorage::blobService::trigger.id, operatorPrincipalId, roles.storageBlobDataContributor)
  scope: dataStorage::blobService::trigger
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}
