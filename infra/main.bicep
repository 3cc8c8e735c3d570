// fraudops on Azure: one resource group per environment (dev, prod).
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/parameters/<env>.json
// infra/deploy.sh runs it in two phases: everything, then (once the code is published and the
// host has created its blobs_extension key) the Event Grid subscription of the blob trigger.
targetScope = 'resourceGroup'

@description('Environment name, part of every resource name.')
@allowed(['dev', 'prod'])
param environmentName string

@description('Azure region; defaults to the resource group\'s. Must offer Flex Consumption.')
param location string = resourceGroup().location

@description('Short workload name, the first part of every resource name.')
@minLength(3)
@maxLength(10)
param workloadName string = 'fraudops'

@description('Tags applied to every resource.')
param tags object = {}

@description('Function app instance memory in MB (512, 2048, 4096). Retraining needs 2048 or more.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('Most function app instances.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances for the HTTP functions: 0 scales to zero (cold starts of a few seconds).')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int = 1

@description('Spread the function app over availability zones (the region must offer it for Flex Consumption).')
param zoneRedundant bool = false

@description('Storage replication.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS', 'Standard_RAGRS', 'Standard_RAGZRS'])
param storageSku string = 'Standard_LRS'

@description('Days landed CSVs stay in raw/.')
@minValue(1)
param rawRetentionDays int = 90

@description('Days the records of served predictions stay: the stream archive in scored/, the HTTP records in predictions/ and the alerts in alerts/.')
@minValue(1)
param scoredRetentionDays int = 365

@description('Days rows refused by the ETL (quarantine/) and events refused by the stream (deadletter/) stay.')
@minValue(1)
param quarantineRetentionDays int = 90

@description('Days each audit line is immutable (WORM: appends only) and kept; seven years by default.')
@minValue(1)
param auditRetentionDays int = 2557

@description('Whether the audit container\'s WORM policy is already locked (the deploy scripts lock it in prod and set this): a locked policy is left alone, since it can no longer be redeployed, only extended.')
param auditPolicyLocked bool = false

@description('Event Hubs tier.')
@allowed(['Standard', 'Premium'])
param eventHubsSku string = 'Standard'

@description('Event Hubs throughput (Standard) or processing (Premium) units.')
@minValue(1)
param eventHubsCapacity int = 1

@description('Partitions of the transactions hub (the stream\'s parallelism; fixed once created on Standard).')
@minValue(1)
@maxValue(32)
param eventHubsPartitionCount int = 4

@description('Days events stay in the hubs.')
@minValue(1)
@maxValue(7)
param eventHubsRetentionDays int = 1

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Days a deleted Key Vault or secret stays recoverable (purge protection is on).')
@minValue(7)
@maxValue(90)
param keyVaultSoftDeleteDays int = 90

@description('Nightly retraining schedule (NCRONTAB, UTC): RETRAIN_SCHEDULE.')
param retrainSchedule string = '0 0 2 * * *'

@description('NCRONTAB of the daily monitoring run (it judges the previous UTC day).')
param monitorSchedule string = '0 30 3 * * *'

@description('Email address the alert rules notify (the action group); empty: add a receiver later.')
param alertEmail string = ''

@description('Cost of a missed fraud relative to a false alarm: COST_FN (the threshold minimises COST_FN*FN + COST_FP*FP).')
param costFalseNegative string = '10'

@description('Cost of a false alarm: COST_FP.')
param costFalsePositive string = '1'

@description('MLflow tracking URI: MLFLOW_TRACKING_URI. Empty (the default): the PostgreSQL Flexible Server of modules/mlflow.bicep, reached with the app identity\'s Entra ID token, artifacts in the mlflow container. Set it to use a tracking server of your own.')
param mlflowTrackingUri string = ''

@description('Deploy the online store of entity state (Azure Managed Redis, modules/redis.bicep): needed when the dataset\'s contract declares behavioural features (docs/behaviour.md).')
param onlineStore bool = false

@description('When the online store cannot be reached: score with the behavioural features missing and say so (missing), or answer 503 (refuse).')
@allowed(['missing', 'refuse'])
param onlineStoreUnavailable string = 'missing'

@description('Federated mode: FL_MODE. secure (the default): the server learns only the sum of the banks\' clipped steps; visible: each update, for a robust aggregator.')
@allowed(['secure', 'visible'])
param federatedMode string = 'secure'

@description('Differential privacy of secure rounds: FL_NOISE_MULTIPLIER, the Gaussian noise the banks add before masking, as a multiple of the clip bound (empty, the default: none). Worth it from about ten banks; below, it ruins the model (README: "Clipping and noise at the bank", measured).')
param federatedNoiseMultiplier string = ''

@description('Federated aggregator of visible rounds: FL_AGGREGATOR (secure rounds use fedavg of the banks\' clipped steps).')
@allowed(['fedavg', 'median', 'trimmed_mean'])
param federatedAggregator string = 'trimmed_mean'

@description('Banks a federated round waits for: FL_MIN_CLIENTS.')
@minValue(1)
param federatedMinClients int = 3

@description('Any other app setting (name: value), applied last; see local.settings.json.example for the names.')
param appSettingsOverrides object = {}

@description('Create the Event Grid subscription of the blob trigger. Needs the code published first (deploy.sh does both).')
param deployEventSubscription bool = false

@description('Event Grid delivery attempts before dead-lettering.')
@minValue(1)
@maxValue(30)
param eventGridMaxDeliveryAttempts int = 10

@description('Minutes Event Grid keeps retrying an event before dead-lettering it.')
@minValue(1)
@maxValue(1440)
param eventGridEventTtlMinutes int = 1440

@description('Object id of the operator (user or pipeline) to grant bank-key management and raw/ upload; empty for none.')
param operatorPrincipalId string = ''

@description('Type of operatorPrincipalId.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param operatorPrincipalType string = 'User'

var token = take(uniqueString(subscription().id, resourceGroup().id, environmentName), 8)
var baseName = '${workloadName}-${environmentName}-${token}'
var compactName = toLower(replace('${workloadName}${environmentName}${token}', '-', ''))
var allTags = union(tags, { workload: workloadName, environment: environmentName })
var deploymentContainerName = 'app-package'
var transactionsHubName = 'transactions'
var alertsHubName = 'fraud-alerts'
var consumerGroupName = 'fraud-scoring'
// Every container the app writes or reads (see the README's "Storage layout").
var dataContainers = [
  'raw'
  'quarantine'
  'curated'
  'models'
  'reports'
  'scored'
  'predictions'
  'mlflow'
  'alerts'
  'deadletter'
  'federated'
  'audit'
]

module identity 'modules/identity.bicep' = {
  name: 'identity'
  params: { name: 'id-${baseName}', location: location, tags: allTags }
}

module deployIdentity 'modules/identity.bicep' = {
  name: 'deploy-identity'
  params: { name: 'id-${baseName}-deploy', location: location, tags: allTags }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: { baseName: baseName, location: location, tags: allTags, retentionInDays: logRetentionDays }
}

module mlflow 'modules/mlflow.bicep' = if (empty(mlflowTrackingUri)) {
  name: 'mlflow'
  params: {
    name: 'psql-${baseName}'
    location: location
    tags: allTags
    identityName: identity.outputs.name
    identityPrincipalId: identity.outputs.principalId
    geoRedundantBackup: environmentName == 'prod'
  }
}

module redis 'modules/redis.bicep' = if (onlineStore) {
  name: 'redis'
  params: {
    name: 'redis-${baseName}'
    location: location
    tags: allTags
    identityPrincipalId: identity.outputs.principalId
    highAvailability: environmentName == 'prod'
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  params: {
    baseName: baseName
    location: location
    tags: allTags
    workspaceId: monitoring.outputs.workspaceId
    alertEmail: alertEmail
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  params: { baseName: baseName, location: location, tags: allTags, appInsightsId: monitoring.outputs.appInsightsId }
}

module hostStorage 'modules/storage.bicep' = {
  name: 'host-storage'
  params: {
    name: take('sth${compactName}', 24)
    location: location
    tags: allTags
    skuName: storageSku
    containerNames: []
    dataLifecycle: false
    rawRetentionDays: rawRetentionDays
    scoredRetentionDays: scoredRetentionDays
    quarantineRetentionDays: quarantineRetentionDays
    auditContainerName: ''
    auditRetentionDays: auditRetentionDays
    auditPolicyLocked: false
    softDeleteRetentionDays: 14
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: take('st${compactName}', 24)
    location: location
    tags: allTags
    skuName: storageSku
    containerNames: concat(dataContainers, [deploymentContainerName])
    dataLifecycle: true
    rawRetentionDays: rawRetentionDays
    scoredRetentionDays: scoredRetentionDays
    quarantineRetentionDays: quarantineRetentionDays
    auditContainerName: 'audit'
    auditRetentionDays: auditRetentionDays
    auditPolicyLocked: auditPolicyLocked
    softDeleteRetentionDays: 14
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    namespaceName: 'evhns-${baseName}'
    location: location
    tags: allTags
    skuName: eventHubsSku
    capacity: eventHubsCapacity
    partitionCount: eventHubsPartitionCount
    retentionDays: eventHubsRetentionDays
    transactionsHubName: transactionsHubName
    alertsHubName: alertsHubName
    consumerGroupName: consumerGroupName
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: take('kv${compactName}', 24)
    location: location
    tags: allTags
    softDeleteRetentionDays: keyVaultSoftDeleteDays
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

// The audit chain's heads, anchored outside the data account: a third account whose one container is
// append-only (WORM, locked in prod by the deploy scripts) and on which the app's identity can only read and
// append. Whoever can rewrite the data account (the chain, its reports) cannot rewrite these.
module anchorStorage 'modules/storage.bicep' = {
  name: 'anchor-storage'
  params: {
    name: take('sta${compactName}', 24)
    location: location
    tags: allTags
    skuName: storageSku
    containerNames: ['anchors']
    dataLifecycle: false
    rawRetentionDays: rawRetentionDays
    scoredRetentionDays: scoredRetentionDays
    quarantineRetentionDays: quarantineRetentionDays
    auditContainerName: 'anchors'
    auditRetentionDays: auditRetentionDays
    auditPolicyLocked: auditPolicyLocked
    softDeleteRetentionDays: 14
  }
}

module eventGrid 'modules/eventgrid.bicep' = {
  name: 'eventgrid'
  params: {
    name: 'evgt-${baseName}'
    location: location
    tags: allTags
    storageAccountId: storage.outputs.id
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  params: {
    appPrincipalId: identity.outputs.principalId
    deployPrincipalId: deployIdentity.outputs.principalId
    eventGridPrincipalId: eventGrid.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    hostStorageAccountName: hostStorage.outputs.name
    dataStorageAccountName: storage.outputs.name
    anchorStorageAccountName: anchorStorage.outputs.name
    dataContainerNames: dataContainers
    triggerContainerName: 'raw'
    deploymentContainerName: deploymentContainerName
    eventHubsNamespaceName: eventHubs.outputs.namespaceName
    transactionsHubName: eventHubs.outputs.transactionsHubName
    alertsHubName: eventHubs.outputs.alertsHubName
    keyVaultName: keyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    deadLetterContainerName: 'deadletter'
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  // The app starts reading storage, hubs and secrets at once: give it its roles first.
  dependsOn: [roles]
  params: {
    baseName: baseName
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    deployIdentityId: deployIdentity.outputs.id
    hostStorageAccountName: hostStorage.outputs.name
    dataBlobEndpoint: storage.outputs.blobEndpoint
    anchorBlobEndpoint: anchorStorage.outputs.blobEndpoint
    dataQueueEndpoint: storage.outputs.queueEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    eventHubsNamespace: eventHubs.outputs.fullyQualifiedNamespace
    transactionsHubName: eventHubs.outputs.transactionsHubName
    alertsHubName: eventHubs.outputs.alertsHubName
    consumerGroupName: eventHubs.outputs.consumerGroupName
    keyVaultUri: keyVault.outputs.uri
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    alwaysReadyHttpInstances: alwaysReadyHttpInstances
    zoneRedundant: zoneRedundant
    retrainSchedule: retrainSchedule
    monitorSchedule: monitorSchedule
    costFalseNegative: costFalseNegative
    costFalsePositive: costFalsePositive
    mlflowTrackingUri: empty(mlflowTrackingUri) ? mlflow.outputs.trackingUri : mlflowTrackingUri
    onlineStoreUrl: onlineStore ? redis.outputs.url : ''
    onlineStoreUnavailable: onlineStoreUnavailable
    mlflowArtifactRoot: 'wasbs://mlflow@${storage.outputs.name}.blob.core.windows.net/'
    federatedMode: federatedMode
    federatedNoiseMultiplier: federatedNoiseMultiplier
    federatedAggregator: federatedAggregator
    federatedMinClients: federatedMinClients
    appSettingsOverrides: appSettingsOverrides
  }
}

module eventSubscription 'modules/eventgrid-subscription.bicep' = if (deployEventSubscription) {
  name: 'eventgrid-subscription'
  dependsOn: [roles]
  params: {
    topicName: eventGrid.outputs.name
    functionAppName: functionApp.outputs.name
    functionName: 'etl_raw_blob'
    sourceContainerName: 'raw'
    storageAccountId: storage.outputs.id
    deadLetterContainerName: 'deadletter'
    maxDeliveryAttempts: eventGridMaxDeliveryAttempts
    eventTimeToLiveInMinutes: eventGridEventTtlMinutes
  }
}

@description('Function app name (deploy.sh publishes the code to it).')
output functionAppName string = functionApp.outputs.name

@description('Function app host name; the API is https://<host>/api/...')
output functionAppHostName string = functionApp.outputs.hostName

@description('Data storage account name: upload transaction CSVs to its raw/ container.')
output storageAccountName string = storage.outputs.name

@description('The account holding the audit chain\'s anchored heads.')
output anchorStorageAccountName string = anchorStorage.outputs.name

@description('Key Vault name: bank keys are secrets fl-bank-<id>; the admin key is fl-admin-key.')
output keyVaultName string = keyVault.outputs.name

@description('Event Hubs namespace host: send transactions to its transactions hub.')
output eventHubsNamespace string = eventHubs.outputs.fullyQualifiedNamespace

@description('Whether the blob trigger\'s Event Grid subscription was deployed in this run.')
output eventSubscriptionDeployed bool = deployEventSubscription
