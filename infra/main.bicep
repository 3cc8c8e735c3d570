// fraudops on Azure: one resource group per environment (dev, prod), two function apps from one tree:
//   scoring:  HTTP scoring and the Event Hubs stream (deploy/scoring), lean, always ready;
//   pipeline: the blob ETL, retraining, monitoring, the federated coordinator and governance (deploy/pipeline).
// Each has its own identity, host storage account, package, memory size and roles (modules/roles.bicep).
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

@description('The pipeline app\'s instance memory in MB (512, 2048, 4096). Retraining needs 2048 or more.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@description('The scoring app\'s instance memory in MB (512, 2048, 4096): ONNX Runtime, the champion and its booster for explanations.')
@allowed([512, 2048, 4096])
param scoringInstanceMemoryMB int = 2048

@description('Most instances of each function app.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100

@description('Always-ready instances of the scoring app\'s HTTP functions: 0 scales to zero (cold starts of a few seconds). The pipeline app has none.')
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

@description('Private networking: both apps join a VNet (modules/network.bicep), and storage, Event Hubs, PostgreSQL and Redis are reached through private endpoints with their public endpoints closed (Key Vault gets private endpoints and keeps its public endpoint, RBAC-only: the platform resolves Key Vault references from outside the VNet). Data-plane steps of the deploy scripts (secrets, the PostgreSQL role, raw/ uploads) must then run from inside the network.')
param vnetEnabled bool = false

@description('Object id of the PostgreSQL Entra administrator (an Entra group of operators is best); empty: the operator who deploys. Never the app: the pipeline app gets a narrower role (infra/postgres-role.sh).')
param postgresAdminPrincipalId string = ''

@description('Its name as Entra ID shows it: a user\'s UPN, or a group\'s or service principal\'s display name.')
param postgresAdminPrincipalName string = ''

@description('Type of postgresAdminPrincipalId.')
@allowed(['User', 'Group', 'ServicePrincipal'])
param postgresAdminPrincipalType string = 'User'

@description('Display name of the operator (operatorPrincipalId): the PostgreSQL administrator when postgresAdminPrincipalId is empty.')
param operatorPrincipalName string = ''

@description('Client id of the Entra ID app registration whose app roles (Fraudops.Admin, Fraudops.FederatedAdmin) admit people to the pipeline\'s admin routes (README: "Who may call the admin routes"); empty: those routes answer 503 until it is set.')
param adminAppId string = ''

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
var deploymentContainerName = 'app-package'  // in each app's own host account
var apps = ['scoring', 'pipeline']
var hostStorageNames = [take('stsh${compactName}', 24), take('stph${compactName}', 24)]
var dataStorageName = take('st${compactName}', 24)
var anchorStorageName = take('sta${compactName}', 24)
var vaultName = take('kv${compactName}', 24)
var sharedVaultName = take('kvs${compactName}', 24)
var eventHubsName = 'evhns-${baseName}'
var postgresName = 'psql-${baseName}'
var redisName = 'redis-${baseName}'
var vnetName = 'vnet-${baseName}'
var storageId = 'Microsoft.Storage/storageAccounts'
// Every private endpoint of vnetEnabled: the service's resource id and sub-resource (known before deployment).
var storageEndpoints = [
  { name: 'stsh-blob', id: resourceId(storageId, hostStorageNames[0]), group: 'blob' }
  { name: 'stsh-queue', id: resourceId(storageId, hostStorageNames[0]), group: 'queue' }
  { name: 'stsh-table', id: resourceId(storageId, hostStorageNames[0]), group: 'table' }
  { name: 'stph-blob', id: resourceId(storageId, hostStorageNames[1]), group: 'blob' }
  { name: 'stph-queue', id: resourceId(storageId, hostStorageNames[1]), group: 'queue' }
  { name: 'stph-table', id: resourceId(storageId, hostStorageNames[1]), group: 'table' }
  { name: 'st-blob', id: resourceId(storageId, dataStorageName), group: 'blob' }
  { name: 'st-queue', id: resourceId(storageId, dataStorageName), group: 'queue' }
  { name: 'sta-blob', id: resourceId(storageId, anchorStorageName), group: 'blob' }
]
var serviceEndpoints = [
  { name: 'kv', id: resourceId('Microsoft.KeyVault/vaults', vaultName), group: 'vault' }
  { name: 'kvs', id: resourceId('Microsoft.KeyVault/vaults', sharedVaultName), group: 'vault' }
  { name: 'evhns', id: resourceId('Microsoft.EventHub/namespaces', eventHubsName), group: 'namespace' }
]
var postgresEndpoint = empty(mlflowTrackingUri) ? [{ name: 'psql', id: resourceId('Microsoft.DBforPostgreSQL/flexibleServers', postgresName), group: 'postgresqlServer' }] : []
var redisEndpoint = onlineStore ? [{ name: 'redis', id: resourceId('Microsoft.Cache/redisEnterprise', redisName), group: 'redisEnterprise' }] : []
var privateEndpoints = concat(storageEndpoints, serviceEndpoints, postgresEndpoint, redisEndpoint)
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


module identity 'modules/identity.bicep' = [
  for app in apps: {
    name: 'identity-${app}'
    params: { name: 'id-${baseName}-${app}', location: location, tags: allTags }
  }
]

module deployIdentity 'modules/identity.bicep' = [
  for app in apps: {
    name: 'deploy-identity-${app}'
    params: { name: 'id-${baseName}-${app}-deploy', location: location, tags: allTags }
  }
]

module network 'modules/network.bicep' = if (vnetEnabled) {
  name: 'network'
  params: { name: vnetName, location: location, tags: allTags, onlineStore: onlineStore }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: { baseName: baseName, location: location, tags: allTags, retentionInDays: logRetentionDays }
}

module mlflow 'modules/mlflow.bicep' = if (empty(mlflowTrackingUri)) {
  name: 'mlflow'
  params: {
    name: postgresName
    location: location
    tags: allTags
    identityName: identity[1].outputs.name
    identityPrincipalId: identity[1].outputs.principalId
    administratorPrincipalId: empty(postgresAdminPrincipalId) ? operatorPrincipalId : postgresAdminPrincipalId
    administratorPrincipalName: empty(postgresAdminPrincipalId) ? operatorPrincipalName : postgresAdminPrincipalName
    administratorPrincipalType: empty(postgresAdminPrincipalId) ? operatorPrincipalType : postgresAdminPrincipalType
    privateNetworking: vnetEnabled
    geoRedundantBackup: environmentName == 'prod'
  }
}

module redis 'modules/redis.bicep' = if (onlineStore) {
  name: 'redis'
  params: {
    name: redisName
    privateNetworking: vnetEnabled
    location: location
    tags: allTags
    identityPrincipalId: identity[0].outputs.principalId  // the scoring app keeps the entity state
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

// Each app's own host account (its keys, timers and leases) holding its code package container: neither app can
// read the other's function keys or rewrite the other's package.
module hostStorage 'modules/storage.bicep' = [
  for (app, i) in apps: {
    name: 'host-storage-${app}'
    params: {
      name: hostStorageNames[i]
      privateNetworking: vnetEnabled
      location: location
      tags: allTags
      skuName: storageSku
      containerNames: [deploymentContainerName]
      dataLifecycle: false
      rawRetentionDays: rawRetentionDays
      scoredRetentionDays: scoredRetentionDays
      quarantineRetentionDays: quarantineRetentionDays
      auditContainerName: ''
      auditRetentionDays: auditRetentionDays
      auditPolicyLocked: false
      softDeleteRetentionDays: 14
      // Who wrote the code package (alerts.bicep raises an alert on each write to app-package)
      logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    }
  }
]

module storage 'modules/storage.bicep' = {
  name: 'storage'
  params: {
    name: dataStorageName
    privateNetworking: vnetEnabled
    allowTrustedServices: true  // Event Grid dead-letters into deadletter/ with its own identity
    location: location
    tags: allTags
    skuName: storageSku
    containerNames: dataContainers
    dataLifecycle: true
    rawRetentionDays: rawRetentionDays
    scoredRetentionDays: scoredRetentionDays
    quarantineRetentionDays: quarantineRetentionDays
    auditContainerName: 'audit'
    auditRetentionDays: auditRetentionDays
    auditPolicyLocked: auditPolicyLocked
    softDeleteRetentionDays: 14
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

module eventHubs 'modules/eventhubs.bicep' = {
  name: 'eventhubs'
  params: {
    namespaceName: eventHubsName
    privateNetworking: vnetEnabled
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

// The pipeline's vault: the admin and bank keys, the audit chain's and the federated server's signing keys.
module keyVault 'modules/keyvault.bicep' = {
  name: 'keyvault'
  params: {
    name: vaultName
    location: location
    tags: allTags
    softDeleteRetentionDays: keyVaultSoftDeleteDays
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
  }
}

// The vault both apps read: the customer pseudonym key only (the scoring app pseudonymises what it records).
module sharedKeyVault 'modules/keyvault.bicep' = {
  name: 'keyvault-shared'
  params: {
    name: sharedVaultName
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
    name: anchorStorageName
    privateNetworking: vnetEnabled
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
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
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
    scoringPrincipalId: identity[0].outputs.principalId
    pipelinePrincipalId: identity[1].outputs.principalId
    scoringDeployPrincipalId: deployIdentity[0].outputs.principalId
    pipelineDeployPrincipalId: deployIdentity[1].outputs.principalId
    eventGridPrincipalId: eventGrid.outputs.principalId
    operatorPrincipalId: operatorPrincipalId
    operatorPrincipalType: operatorPrincipalType
    scoringHostStorageAccountName: hostStorage[0].outputs.name
    pipelineHostStorageAccountName: hostStorage[1].outputs.name
    dataStorageAccountName: storage.outputs.name
    anchorStorageAccountName: anchorStorage.outputs.name
    dataContainerNames: dataContainers
    scoringRecordContainerNames: ['predictions', 'scored', 'alerts', 'deadletter']
    modelsContainerName: 'models'
    contractsContainerName: 'curated'
    triggerContainerName: 'raw'
    deploymentContainerName: deploymentContainerName
    eventHubsNamespaceName: eventHubs.outputs.namespaceName
    transactionsHubName: eventHubs.outputs.transactionsHubName
    alertsHubName: eventHubs.outputs.alertsHubName
    keyVaultName: keyVault.outputs.name
    sharedKeyVaultName: sharedKeyVault.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    deadLetterContainerName: 'deadletter'
  }
}

// The two apps, from one module: apps[0] scoring, apps[1] pipeline.
module functionApp 'modules/functionapp.bicep' = [
  for (app, i) in apps: {
    name: 'functionapp-${app}'
    // An app starts reading storage, hubs and secrets at once: give it its roles (and its network) first.
    dependsOn: [roles, network]
    params: {
      role: app
      virtualNetworkSubnetId: vnetEnabled ? resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, 'snet-${app}') : ''
      baseName: baseName
      location: location
      tags: allTags
      identityId: identity[i].outputs.id
      identityClientId: identity[i].outputs.clientId
      deployIdentityId: deployIdentity[i].outputs.id
      hostStorageAccountName: hostStorage[i].outputs.name
      packageBlobEndpoint: hostStorage[i].outputs.blobEndpoint
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
      sharedKeyVaultUri: sharedKeyVault.outputs.uri
      instanceMemoryMB: app == 'scoring' ? scoringInstanceMemoryMB : instanceMemoryMB
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
      adminAppId: adminAppId
      appSettingsOverrides: appSettingsOverrides
    }
  }
]

module privateEndpoint 'modules/private-endpoint.bicep' = [
  for endpoint in privateEndpoints: if (vnetEnabled) {
    name: 'pe-${endpoint.name}'
    dependsOn: [hostStorage, storage, anchorStorage, keyVault, sharedKeyVault, eventHubs, mlflow, redis]
    params: {
      name: 'pe-${endpoint.name}-${baseName}'
      location: location
      tags: allTags
      subnetId: resourceId('Microsoft.Network/virtualNetworks/subnets', vnetName, 'snet-endpoints')
      targetResourceId: endpoint.id
      groupId: endpoint.group
      privateDnsZoneName: network.outputs.privateDnsZoneNames[endpoint.group]
    }
  }
]

module eventSubscription 'modules/eventgrid-subscription.bicep' = if (deployEventSubscription) {
  name: 'eventgrid-subscription'
  dependsOn: [roles]
  params: {
    topicName: eventGrid.outputs.name
    functionAppName: functionApp[1].outputs.name
    functionName: 'etl_raw_blob'
    sourceContainerName: 'raw'
    storageAccountId: storage.outputs.id
    deadLetterContainerName: 'deadletter'
    maxDeliveryAttempts: eventGridMaxDeliveryAttempts
    eventTimeToLiveInMinutes: eventGridEventTtlMinutes
  }
}

@description('The scoring app\'s name (deploy.sh publishes deploy/scoring\'s package to it).')
output scoringAppName string = functionApp[0].outputs.name

@description('The scoring app\'s host name: https://<host>/api/score, /api/health, /api/model.')
output scoringAppHostName string = functionApp[0].outputs.hostName

@description('The pipeline app\'s name (deploy.sh publishes deploy/pipeline\'s package to it).')
output pipelineAppName string = functionApp[1].outputs.name

@description('The pipeline app\'s host name: https://<host>/api/federated/..., /api/admin/...')
output pipelineAppHostName string = functionApp[1].outputs.hostName

@description('Data storage account name: upload transaction CSVs to its raw/ container.')
output storageAccountName string = storage.outputs.name

@description('The account holding the audit chain\'s anchored heads.')
output anchorStorageAccountName string = anchorStorage.outputs.name

@description('The pipeline\'s Key Vault: bank keys are secrets fl-bank-<id>; the admin keys, the audit chain\'s and the federated server\'s signing keys.')
output keyVaultName string = keyVault.outputs.name

@description('The Key Vault both apps read: customer-pseudonym-key.')
output sharedKeyVaultName string = sharedKeyVault.outputs.name

@description('Event Hubs namespace host: send transactions to its transactions hub.')
output eventHubsNamespace string = eventHubs.outputs.fullyQualifiedNamespace

@description('MLflow\'s PostgreSQL host (empty with a tracking server of your own): the deploy scripts give the pipeline app its role there.')
output mlflowHost string = empty(mlflowTrackingUri) ? mlflow.outputs.host : ''

@description('The pipeline app\'s identity: its PostgreSQL role is named after it.')
output pipelineIdentityName string = identity[1].outputs.name

@description('The pipeline app\'s identity\'s object id.')
output pipelineIdentityPrincipalId string = identity[1].outputs.principalId

@description('Whether the apps run in a VNet with private endpoints (data-plane steps must then run from inside it).')
output vnetEnabled bool = vnetEnabled

@description('Whether the blob trigger\'s Event Grid subscription was deployed in this run.')
output eventSubscriptionDeployed bool = deployEventSubscription
