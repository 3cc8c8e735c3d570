// One function app on its own Flex Consumption plan (Python 3.13), running as its own user-assigned identity,
// with the app settings of its role. main.bicep deploys it twice, from one tree:
//   scoring:  HTTP scoring and the Event Hubs stream (deploy/scoring): the settings of scoring only.
//   pipeline: the blob ETL, the retrain and monitor timers, the federated coordinator and the governance routes
//             (deploy/pipeline): the settings of everything else.
// Every setting the code reads (shared/domain/settings.py and the trigger bindings) is set for the app that
// reads it; tests/infra/test_settings_consistency.py keeps the two in step, per app.

@description('Which deployable this app runs: scoring or pipeline (its package is built from deploy/<role>).')
@allowed(['scoring', 'pipeline'])
param role string

@description('Name prefix for the plan and the app (the app is func-<role>-<baseName>).')
param baseName string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('User-assigned identity resource id.')
param identityId string

@description('User-assigned identity client id.')
param identityClientId string

@description('Deployment identity resource id: the platform reads the code package with it (roles.bicep: Blob Data Contributor on this app\'s package container only). It must be attached for the platform to use it, so code in the app could request its token too: its reach is that one container, and every write there raises an alert (alerts.bicep).')
param deployIdentityId string

@description('This app\'s own host storage account (AzureWebJobsStorage__accountName): the other app cannot read its keys or timers.')
param hostStorageAccountName string

@description('Blob endpoint of this app\'s host account, where its code package container is.')
param packageBlobEndpoint string

@description('Blob endpoint of the data account.')
param dataBlobEndpoint string

@description('Queue endpoint of the data account (the blob trigger\'s connection needs both).')
param dataQueueEndpoint string

@description('Blob endpoint of the account holding the audit chain\'s anchored heads (identity-based).')
param anchorBlobEndpoint string

@description('Container the plan deploys the app package from.')
param deploymentContainerName string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Event Hubs fully qualified namespace.')
param eventHubsNamespace string

@description('Input hub name.')
param transactionsHubName string

@description('Alerts hub name.')
param alertsHubName string

@description('The app\'s consumer group on the input hub.')
param consumerGroupName string

@description('URI of the pipeline\'s Key Vault (admin and bank keys, the audit chain\'s and the federated server\'s signing keys): the pipeline app only.')
param keyVaultUri string

@description('URI of the Key Vault both apps read: the customer pseudonym key, and nothing else.')
param sharedKeyVaultUri string

@description('Instance memory in MB (Flex Consumption: 512, 2048 or 4096). Training needs 2048.')
@allowed([512, 2048, 4096])
param instanceMemoryMB int

@description('Most instances the app scales out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Always-ready instances for the HTTP functions (0: scale from zero and accept cold starts).')
@minValue(0)
@maxValue(20)
param alwaysReadyHttpInstances int

@description('HTTP requests one instance takes at a time (Flex Consumption scales out beyond it). Keep it equal to host.json\'s extensions.http.maxConcurrentRequests; a test holds the two together.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 8

@description('Spread instances over availability zones (needs a region that offers it for Flex Consumption).')
param zoneRedundant bool

@description('Nightly retraining schedule (NCRONTAB, UTC).')
param retrainSchedule string

@description('NCRONTAB of the daily monitoring run.')
param monitorSchedule string

@description('Cost of a missed fraud, in units of a false alarm\'s cost.')
param costFalseNegative string

@description('Cost of a false alarm.')
param costFalsePositive string

@description('MLflow tracking URI (the PostgreSQL store of modules/mlflow.bicep, with an {entra_token} placeholder).')
param mlflowTrackingUri string

@description('Where MLflow keeps artifacts: the data account\'s mlflow container.')
param mlflowArtifactRoot string

@description('The online store of entity state (modules/redis.bicep): empty when the dataset declares no behaviour.')
param onlineStoreUrl string = ''

@description('When the online store cannot be reached: missing (score, and say so) or refuse (503).')
param onlineStoreUnavailable string = 'missing'

@description('Federated mode: secure (the server sees only the sum of the banks\' clipped steps) or visible (each update, so a robust aggregator can run).')
@allowed(['secure', 'visible'])
param federatedMode string

@description('Secure rounds: the Gaussian noise the banks add, as a multiple of the clip bound (empty: none).')
param federatedNoiseMultiplier string

@description('Robust aggregator for visible federated rounds: fedavg, median or trimmed_mean (secure rounds use fedavg of clipped steps).')
@allowed(['fedavg', 'median', 'trimmed_mean'])
param federatedAggregator string

@description('Banks a federated round waits for before it closes.')
@minValue(1)
param federatedMinClients int

@description('Client id of the Entra ID app registration admin tokens are issued for (README: "Who may call the admin routes"); empty: the pipeline\'s admin routes answer 503 until it is set.')
param adminAppId string = ''

@description('The subnet this app joins (network.bicep: delegated to Microsoft.App/environments); empty: no VNet.')
param virtualNetworkSubnetId string = ''

@description('Any app setting to add or override (name: value), applied last.')
param appSettingsOverrides object

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy is the zoneRedundant parameter (prod: true); not every Flex Consumption region offers it
  name: 'plan-${role}-${baseName}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { tier: 'FlexConsumption', name: 'FC1' }
  properties: { reserved: true, zoneRedundant: zoneRedundant }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the scoring and federated APIs are public by design (banks call them); every route needs a function key, federated ones an HMAC signature too
  // checkov:skip=CKV_AZURE_17: callers authenticate with function keys and banks with HMAC-signed requests; mutual TLS is not required of them
  // checkov:skip=CKV_AZURE_212: Flex Consumption has no instance minimum; warm capacity is alwaysReadyHttpInstances (prod: 2)
  // checkov:skip=CKV_AZURE_213: /api/health needs a function key and answers 503 until a first model is published; deploy.sh smoke-tests it instead
  name: 'func-${role}-${baseName}'
  location: location
  tags: union(tags, { 'azd-service-name': role })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {}, '${deployIdentityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${packageBlobEndpoint}${deploymentContainerName}'
          authentication: { type: 'UserAssignedIdentity', userAssignedIdentityResourceId: deployIdentityId }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: role == 'scoring' && alwaysReadyHttpInstances > 0 ? [{ name: 'http', instanceCount: alwaysReadyHttpInstances }] : []
        triggers: { http: { perInstanceConcurrency: httpPerInstanceConcurrency } }
      }
      runtime: { name: 'python', version: '3.13' }
    }
  }
}

// No publishing passwords: code is published with Entra ID (az functionapp deployment / azd).
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

// Both apps: the platform, telemetry, the data account, the dataset, and the customer pseudonym key.
var commonSettings = {
  // Platform: identity-based host storage and telemetry (no keys anywhere).
  AzureWebJobsStorage__accountName: hostStorageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: appInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  AzureWebJobsFeatureFlags: 'EnableWorkerIndexing'
  // The worker sets up Azure Monitor's OpenTelemetry distro itself (spans and metrics, with the identity of
  // APPLICATIONINSIGHTS_AUTHENTICATION_STRING); its log exporter stays off because the host already forwards
  // every log line: both on would write each line twice.
  PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY: 'true'
  OTEL_LOGS_EXPORTER: 'none'
  OTEL_SERVICE_NAME: 'fraudops-${role}'
  // The app's data: a second account, roles per container (roles.bicep), different for each app.
  // Service URIs, not __accountName: the Python blob binding accepts __accountName only for AzureWebJobsStorage.
  DataStorage__blobServiceUri: dataBlobEndpoint
  DataStorage__credential: 'managedidentity'
  DataStorage__clientId: identityClientId
  // The app (shared/domain/settings.py).
  APP_ENV: 'production'
  DATASET_NAME: 'creditcard'
  MODEL_NAME: 'fraud'
  TELEMETRY_EXPORTER: 'auto'
  // The HMAC key that pseudonymises customer ids before anything is stored (governance): in the shared vault,
  // the one secret the scoring app can read.
  CUSTOMER_PSEUDONYM_KEY: '@Microsoft.KeyVault(SecretUri=${sharedKeyVaultUri}secrets/customer-pseudonym-key)'
}

// The scoring app: the HTTP scoring routes and the Event Hubs stream.
var scoringSettings = {
  // The online store (behavioural features): the scoring identity's Entra ID token is the password
  ONLINE_STORE_URL: onlineStoreUrl
  ONLINE_STORE_UNAVAILABLE: onlineStoreUnavailable
  SCORE_MAX_BATCH: '1000'
  SCORE_MAX_BODY_BYTES: '2000000'
  MODEL_REFRESH_SECONDS: '30'
  ORT_INTRA_OP_THREADS: '1'
  // Every served prediction recorded to predictions/ (shared/scoring/records.py); telemetry as set up above.
  PREDICTIONS_RECORD: 'true'
  PREDICTIONS_MAX_BUFFERED: '100000'
  PREDICTIONS_FLUSH_ROWS: '5000'
  PREDICTIONS_FLUSH_SECONDS: '5'
  // Streaming: identity-based Event Hubs connection named EVENTHUB.
  EVENTHUB__fullyQualifiedNamespace: eventHubsNamespace
  EVENTHUB__credential: 'managedidentity'
  EVENTHUB__clientId: identityClientId
  EVENTHUB_NAME: transactionsHubName
  EVENTHUB_CONSUMER_GROUP: consumerGroupName
  FRAUD_ALERTS_HUB: alertsHubName
  STREAM_RETRY_ATTEMPTS: '4'
  STREAM_RETRY_BACKOFF_SECONDS: '0.5'
  DEADLETTER_SPOOL_DIR: '/tmp/fraudops-deadletter'
}

// The pipeline app: the blob ETL, retraining, monitoring, the federated coordinator and governance.
var pipelineSettings = {
  // The blob trigger's connection (DataStorage) needs the queue service too (its poison queue).
  DataStorage__queueServiceUri: dataQueueEndpoint
  BLOB_TRIGGER_SOURCE: 'EventGrid'
  RETRAIN_SCHEDULE: retrainSchedule
  COST_FN: costFalseNegative
  COST_FP: costFalsePositive
  TRAIN_SEED: '42'
  TRAIN_NUM_BOOST_ROUND: '1500'
  TRAIN_TIME_BUDGET_SECONDS: '600'
  TRAIN_SEARCH_TRIALS: '20'
  TRAIN_SEARCH_SECONDS: '180'
  TRAIN_MAX_BIN: '4095'
  TRAIN_WINDOW_ROWS: '1000000'
  TRAIN_COMPARE_FAMILIES: 'true'
  TRAIN_DISTRIBUTED_ROWS: '2000000'
  TRAIN_SEARCH_ROWS: '250000'
  PROMOTION_PR_AUC_MARGIN: '0.01'
  MLFLOW_TRACKING_URI: mlflowTrackingUri
  MLFLOW_EXPERIMENT: 'fraud-retraining'
  MLFLOW_ARTIFACT_ROOT: mlflowArtifactRoot
  DRIFT_PSI_THRESHOLD: '0.2'
  DRIFT_ALERT_SHARE: '0.3'
  // The daily monitoring run (functions/timer_monitor.py): realised performance, live drift, alert verdicts.
  MONITOR_SCHEDULE: monitorSchedule
  MONITOR_LOOKBACK_DAYS: '30'
  // Federated learning: bank keys come from Key Vault (fl-bank-<id>) through the SDK.
  KEY_VAULT_URL: keyVaultUri
  FL_ADMIN_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/fl-admin-key)'
  // Admin routes: people signed in with Entra ID holding the app role (Fraudops.Admin, Fraudops.FederatedAdmin);
  // v1 tokens carry the application ID URI as their audience, v2 tokens the client id: both are accepted.
  ADMIN_ENTRA_TENANT_ID: tenant().tenantId
  ADMIN_ENTRA_AUDIENCE: empty(adminAppId) ? '' : 'api://${adminAppId},${adminAppId}'
  // Governance admin routes (/api/admin/...): the shared key is refused in production (local runs only).
  ADMIN_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/admin-key)'
  // The HMAC key that signs each audit line: whoever may append without it cannot write a line that verifies.
  AUDIT_CHAIN_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/audit-chain-key)'
  // The daily run anchors the chain's head in a second account and compares with it.
  AUDIT_ANCHOR_BLOB_URI: anchorBlobEndpoint
  FL_EXPERIMENT: 'fraud-lr'
  FL_MIN_CLIENTS: string(federatedMinClients)
  FL_ROUND_DEADLINE_SECONDS: '3600'
  FL_MODE: federatedMode
  FL_AGGREGATOR: federatedMode == 'secure' ? 'fedavg' : federatedAggregator
  FL_PHASE_SECONDS: '600'
  // Differential privacy, added by the banks before masking; visible rounds take none by default (a robust
  // aggregator has no stated epsilon)
  FL_NOISE_MULTIPLIER: federatedMode == 'secure' ? federatedNoiseMultiplier : ''
  // The secret the key that signs each served global model is derived from; banks pin its public half.
  FL_SERVER_SIGNING_KEY: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/fl-server-signing-key)'
  FL_DP_DELTA: '1e-05'
  FL_AGGREGATION_LEASE_SECONDS: '300'
  FL_MAX_WEIGHT_SHARE: '0.5'
  FL_MAX_BODY_BYTES: '32000000'
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: false positive (App Service Authentication): this appsettings resource holds name/value pairs, not web config
  // checkov:skip=CKV_AZURE_63: false positive (HTTP logging): this appsettings resource holds name/value pairs, not web config
  // checkov:skip=CKV_AZURE_65: false positive (detailed errors): this appsettings resource holds name/value pairs, not web config
  // checkov:skip=CKV_AZURE_66: false positive (failed request tracing): this appsettings resource holds name/value pairs, not web config
  // checkov:skip=CKV_AZURE_80: false positive (.NET version): this appsettings resource holds name/value pairs, not web config
  // checkov:skip=CKV_AZURE_88: false positive (Azure Files): this appsettings resource holds name/value pairs, not web config
  // checkov:skip=CKV_AZURE_222: false positive (public network access): this appsettings resource holds name/value pairs, not web config
  parent: site
  name: 'appsettings'
  properties: union(commonSettings, role == 'scoring' ? scoringSettings : pipelineSettings, appSettingsOverrides)
}

@description('Function app name.')
output name string = site.name

@description('Default host name, e.g. func-....azurewebsites.net.')
output hostName string = site.properties.defaultHostName
