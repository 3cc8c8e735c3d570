// Every role assignment, least privilege per app: each role is scoped to the one resource (or hub, container or
// secret vault) that needs it. Role ids are Azure built-in role definition ids.
//   scoring app:  reads models/ (and uploaded contracts in curated/_contracts/ only, by a path condition), writes
//                 only its records (predictions/, scored/, alerts/, deadletter/), reads the transactions hub, sends
//                 to the alerts hub, reads the shared vault (the customer pseudonym key). It cannot move the
//                 champion pointer, read the data it was trained on, or touch the audit chain.
//   pipeline app: reads and writes every data container, owns the blob trigger's container, appends to the anchor,
//                 reads both vaults. It holds no role on the hubs.
//   each app's deployment identity: its own package container, in its own host account, nothing else.
// tests/infra/test_roles.py reads these assignments and proves each app cannot do what it must not.

@description('Principal id of the scoring app\'s identity.')
param scoringPrincipalId string

@description('Principal id of the pipeline app\'s identity.')
param pipelinePrincipalId string

@description('Principal id of the scoring app\'s deployment identity (its package container only).')
param scoringDeployPrincipalId string

@description('Principal id of the pipeline app\'s deployment identity (its package container only).')
param pipelineDeployPrincipalId string

@description('Principal id of the Event Grid system topic (dead-letter writer).')
param eventGridPrincipalId string

@description('Optional: the person or pipeline that runs deploy.sh, granted Key Vault Secrets Officer on both vaults (bank keys, the generated secrets) and blob upload to raw/. Empty: none.')
param operatorPrincipalId string

@description('Type of operatorPrincipalId.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param operatorPrincipalType string

@description('The scoring app\'s own host account (its AzureWebJobsStorage and its package container).')
param scoringHostStorageAccountName string

@description('The pipeline app\'s own host account (its AzureWebJobsStorage and its package container).')
param pipelineHostStorageAccountName string

@description('The data storage account (DataStorage): the data containers.')
param dataStorageAccountName string

@description('The account holding the audit chain\'s anchored heads (its one container, anchors: WORM, append-only).')
param anchorStorageAccountName string

@description('Every data container: the pipeline app reads and writes each (Storage Blob Data Contributor).')
param dataContainerNames array

@description('The containers the scoring app writes its records to (Storage Blob Data Contributor on each).')
param scoringRecordContainerNames array

@description('The container the scoring app reads the champion from (Storage Blob Data Reader).')
param modelsContainerName string

@description('The container whose _contracts/ prefix holds uploaded dataset contracts (the scoring app reads that prefix only).')
param contractsContainerName string

@description('The blob trigger\'s container: Storage Blob Data Owner, as the Functions blob extension requires of a trigger connection, on this container only.')
param triggerContainerName string

@description('Each host account\'s code package container (its deployment identity only).')
param deploymentContainerName string

@description('Event Hubs namespace.')
param eventHubsNamespaceName string

@description('Hub the scoring app reads.')
param transactionsHubName string

@description('Hub the scoring app writes alerts to.')
param alertsHubName string

@description('The pipeline\'s Key Vault (admin and bank keys, signing keys).')
param keyVaultName string

@description('The Key Vault both apps read (the customer pseudonym key).')
param sharedKeyVaultName string

@description('Application Insights component the apps send telemetry to.')
param appInsightsName string

@description('Container Event Grid dead-letters into.')
param deadLetterContainerName string

var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Reading blobs under _contracts/ only: a read must name a path under it, a listing must ask for that prefix
// (Azure ABAC on Storage Blob Data Reader; every other read or listing of the container is refused).
var contractsOnly = '((!(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\'} AND NOT SubOperationMatches{\'Blob.List\'})) OR (@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:path] StringStartsWith \'_contracts/\')) AND ((!(ActionMatches{\'Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read\'} AND SubOperationMatches{\'Blob.List\'})) OR (@Request[Microsoft.Storage/storageAccounts/blobServices/containers/blobs:prefix] StringStartsWith \'_contracts/\'))'

resource scoringHost 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: scoringHostStorageAccountName
  resource blobService 'blobServices' existing = {
    name: 'default'
    resource deployment 'containers' existing = { name: deploymentContainerName }
  }
}

resource pipelineHost 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: pipelineHostStorageAccountName
  resource blobService 'blobServices' existing = {
    name: 'default'
    resource deployment 'containers' existing = { name: deploymentContainerName }
  }
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
  resource blobService 'blobServices' existing = {
    name: 'default'
    resource deadLetter 'containers' existing = { name: deadLetterContainerName }
    resource trigger 'containers' existing = { name: triggerContainerName }
    resource models 'containers' existing = { name: modelsContainerName }
    resource contracts 'containers' existing = { name: contractsContainerName }
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

resource recordContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = [
  for container in scoringRecordContainerNames: {
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

resource sharedVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: sharedKeyVaultName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

// ---- The scoring app ------------------------------------------------------------------------------------

// Its Functions host: its own account (blob leases, keys) and queues.
resource scoringHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scoringHost.id, scoringPrincipalId, roles.storageBlobDataOwner)
  scope: scoringHost
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource scoringHostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scoringHost.id, scoringPrincipalId, roles.storageQueueDataContributor)
  scope: scoringHost
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The champion and its files: read only (only the pipeline moves the champion pointer).
resource scoringModelsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage::blobService::models.id, scoringPrincipalId, roles.storageBlobDataReader)
  scope: dataStorage::blobService::models
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
  }
}

// Uploaded dataset contracts (curated/_contracts/): that prefix only, never the curated data beside it.
resource scoringContractsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage::blobService::contracts.id, scoringPrincipalId, roles.storageBlobDataReader)
  scope: dataStorage::blobService::contracts
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    conditionVersion: '2.0'
    condition: contractsOnly
  }
}

// Its records: the HTTP predictions, the stream's archive, its alerts and dead letters.
resource scoringRecordsContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (container, i) in scoringRecordContainerNames: {
    name: guid(recordContainers[i].id, scoringPrincipalId, roles.storageBlobDataContributor)
    scope: recordContainers[i]
    properties: {
      principalId: scoringPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    }
  }
]

// The stream: it reads the transactions hub and writes only to the alerts hub.
resource scoringHubReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace::transactions.id, scoringPrincipalId, roles.eventHubsDataReceiver)
  scope: namespace::transactions
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
  }
}

resource scoringHubSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(namespace::alerts.id, scoringPrincipalId, roles.eventHubsDataSender)
  scope: namespace::alerts
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataSender)
  }
}

// The customer pseudonym key, the one secret it reads.
resource scoringSharedSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(sharedVault.id, scoringPrincipalId, roles.keyVaultSecretsUser)
  scope: sharedVault
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource scoringTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, scoringPrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: scoringPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// ---- The pipeline app -----------------------------------------------------------------------------------

resource pipelineHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineHost.id, pipelinePrincipalId, roles.storageBlobDataOwner)
  scope: pipelineHost
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource pipelineHostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineHost.id, pipelinePrincipalId, roles.storageQueueDataContributor)
  scope: pipelineHost
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// The data: read and write blobs in each data container, nothing on the account (no container creation or
// deletion).
resource pipelineDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (container, i) in dataContainerNames: {
    name: guid(dataContainers[i].id, pipelinePrincipalId, roles.storageBlobDataContributor)
    scope: dataContainers[i]
    properties: {
      principalId: pipelinePrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    }
  }
]

// The audit heads' anchor: read and append in its one container; its WORM policy refuses every other write.
resource pipelineAnchorContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(anchorStorage::blobService::anchors.id, pipelinePrincipalId, roles.storageBlobDataContributor)
  scope: anchorStorage::blobService::anchors
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

// The blob trigger's connection (DataStorage): the extension asks Owner of a trigger connection and queue access
// for its poison queue; Owner is scoped to the trigger's container.
resource pipelineTriggerBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage::blobService::trigger.id, pipelinePrincipalId, roles.storageBlobDataOwner)
  scope: dataStorage::blobService::trigger
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
  }
}

resource pipelineTriggerQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, pipelinePrincipalId, roles.storageQueueDataContributor)
  scope: dataStorage
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
  }
}

// Its secrets (Key Vault references and bank keys) and the pseudonym key; it never writes them.
resource pipelineSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, pipelinePrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource pipelineSharedSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(sharedVault.id, pipelinePrincipalId, roles.keyVaultSecretsUser)
  scope: sharedVault
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

resource pipelineTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, pipelinePrincipalId, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    principalId: pipelinePrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

// ---- Deployment, Event Grid and the operator ------------------------------------------------------------

// The platform reads each app's package with that app's deployment identity; each reaches its own container.
resource scoringDeployPackage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scoringHost::blobService::deployment.id, scoringDeployPrincipalId, roles.storageBlobDataContributor)
  scope: scoringHost::blobService::deployment
  properties: {
    principalId: scoringDeployPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
  }
}

resource pipelineDeployPackage 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(pipelineHost::blobService::deployment.id, pipelineDeployPrincipalId, roles.storageBlobDataContributor)
  scope: pipelineHost::blobService::deployment
  properties: {
    principalId: pipelineDeployPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
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

// The operator: manages the banks' keys (fraudops federated keys add) and the generated secrets, uploads to raw/.
resource operatorSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(vault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: operatorPrincipalId
    principalType: operatorPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

resource operatorSharedSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorPrincipalId)) {
  name: guid(sharedVault.id, operatorPrincipalId, roles.keyVaultSecretsOfficer)
  scope: sharedVault
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
