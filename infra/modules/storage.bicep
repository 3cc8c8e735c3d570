// A storage account, identity only: shared keys are off, so every client (the host, the app,
// Event Grid dead-lettering, the deployment) authenticates with Entra ID. main.bicep deploys two:
//   host: the Functions host's own state (AzureWebJobsStorage); no containers of ours. The host needs
//         Storage Blob Data Owner on it, so it holds nothing else.
//   data: the data containers and the deployment package, each container with its own roles
//         (roles.bicep), so the app's identity is never an owner of the data account and cannot
//         write its own code package.

@description('Storage account name (3-24 lowercase letters and digits).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Replication: Standard_LRS for dev, a zone- or geo-redundant SKU for prod.')
@allowed(['Standard_LRS', 'Standard_ZRS', 'Standard_GRS', 'Standard_GZRS', 'Standard_RAGRS', 'Standard_RAGZRS'])
param skuName string

@description('Containers to create: the data containers and the deployment package (data account), none (host account).')
param containerNames array

@description('Apply the data lifecycle rules (retention of raw/ and scored/, nonce expiry, previous versions); the data account only.')
param dataLifecycle bool

@description('Days a landed CSV stays in raw/ (it is in curated/ as Parquet by then).')
@minValue(1)
param rawRetentionDays int

@description('Days the records of served predictions stay: the stream archive in scored/, the HTTP records in predictions/ and the alerts in alerts/.')
@minValue(1)
param scoredRetentionDays int

@description('Days rows refused by the ETL (quarantine/) and events refused by the stream (deadletter/) stay.')
@minValue(1)
param quarantineRetentionDays int

@description('The container of the audit chain, given a time-based immutability (WORM) policy that allows appends only; empty: none (host account).')
param auditContainerName string

@description('Days each audit line is immutable and kept.')
@minValue(1)
param auditRetentionDays int

@description('Whether the audit WORM policy is locked already: then it is not redeployed (a locked policy can only be extended).')
param auditPolicyLocked bool

@description('Days a deleted blob or container can be restored.')
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int

@description('Private networking (main.bicep\'s vnetEnabled): close the public endpoint; the apps reach the account through its private endpoints (private-endpoint.bicep). false (the default): the public endpoint stays open, Entra ID and RBAC being the gate.')
param privateNetworking bool = false

@description('With privateNetworking: still let Azure\'s trusted services through the closed endpoint, with their own identity and roles (the data account: Event Grid dead-letters undeliverable events into deadletter/). Ignored without privateNetworking.')
param allowTrustedServices bool = false

@description('Log Analytics workspace that receives every blob read, write and delete (StorageRead, StorageWrite, StorageDelete) of this account; empty (the host account): none.')
param logAnalyticsWorkspaceId string = ''

// Open: public endpoint, every network (today's default). Private: no public endpoint at all, or, for trusted
// services, an endpoint that denies every network and lets only them through (with the endpoint Disabled, the
// AzureServices bypass does nothing: it would refuse them too).
var publicEndpoint = !privateNetworking || allowTrustedServices

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_59: the public endpoint is the privateNetworking parameter (main.bicep's vnetEnabled): Disabled with private endpoints; without a VNet the Flex Consumption apps reach it over the public endpoint, Entra ID + RBAC being the gate (shared keys are off)
  // checkov:skip=CKV_AZURE_35: default-deny is the privateNetworking parameter: without a VNet, deny rules would lock out the Functions host, which has no fixed outbound IPs
  // checkov:skip=CKV_AZURE_206: replication is the skuName parameter: dev Standard_LRS, prod Standard_ZRS (parameters/prod.json)
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: skuName }
  properties: {
    accessTier: 'Hot'
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: publicEndpoint ? 'Enabled' : 'Disabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: { enabled: true, keyType: 'Account' }
        file: { enabled: true, keyType: 'Account' }
        queue: { enabled: true, keyType: 'Account' }
        table: { enabled: true, keyType: 'Account' }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: softDeleteRetentionDays }
    containerDeleteRetentionPolicy: { enabled: true, days: softDeleteRetentionDays }
    // Every overwrite of a model, manifest or champion pointer keeps the previous version, so a rewrite
    // of models/ can be seen and undone; previous versions elsewhere expire (rule 'previous-versions').
    isVersioningEnabled: true
  }
}

resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for container in containerNames: {
    parent: blobService
    name: container
    properties: { publicAccess: 'None' }
  }
]

// The audit chain cannot be rewritten or deleted, by anyone, this app included, for auditRetentionDays: the
// policy allows appends to append blobs only (the chain's writes). Bicep can only create it unlocked; in prod
// the deploy scripts lock it right after (lock_audit_policy in infra/lib.sh): then not even the subscription's
// owner can shorten it, and later deployments pass auditPolicyLocked=true to leave it alone. In dev it stays
// unlocked, so a test deployment can be deleted.
resource auditWorm 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = if (!empty(auditContainerName) && !auditPolicyLocked) {
  name: '${account.name}/default/${empty(auditContainerName) ? 'none' : auditContainerName}/default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditRetentionDays
    allowProtectedAppendWrites: true
  }
  dependsOn: [containers]
}

// Retention, container by container (the README's "Governance" table says the same; a test holds them equal):
// raw CSVs are converted to Parquet on arrival; the records of served predictions (scored/, predictions/,
// alerts/) are for audits, delayed labels and retraining; refused rows and events (quarantine/,
// deadletter/) are for fixing the sender: all age out. Federated request nonces are needed only while a
// request's timestamp is inside the 5-minute skew window (an older one is refused by its clock anyway), so
// they go after a day. The audit chain goes when its immutability ends. curated/, models/, reports/,
// mlflow/ and the rest of federated/ are kept (an erasure request removes a customer's rows from them).
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = if (dataLifecycle) {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'raw-expiry'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['raw/'] }
            actions: {
              baseBlob: {
                tierToCool: { daysAfterModificationGreaterThan: min(30, rawRetentionDays) }
                delete: { daysAfterModificationGreaterThan: rawRetentionDays }
              }
            }
          }
        }
        {
          name: 'scored-expiry'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['scored/', 'predictions/', 'alerts/'] }
            actions: {
              baseBlob: {
                tierToCool: { daysAfterModificationGreaterThan: min(30, scoredRetentionDays) }
                delete: { daysAfterModificationGreaterThan: scoredRetentionDays }
              }
            }
          }
        }
        {
          name: 'quarantine-expiry'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['quarantine/', 'deadletter/'] }
            actions: {
              baseBlob: {
                delete: { daysAfterModificationGreaterThan: quarantineRetentionDays }
              }
            }
          }
        }
        {
          name: 'audit-expiry'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['appendBlob'], prefixMatch: ['audit/'] }
            actions: {
              baseBlob: {
                delete: { daysAfterModificationGreaterThan: auditRetentionDays + 1 }
              }
            }
          }
        }
        {
          name: 'previous-versions'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: ['blockBlob']
              prefixMatch: ['raw/', 'quarantine/', 'curated/', 'reports/', 'scored/', 'predictions/', 'mlflow/', 'alerts/', 'deadletter/', 'federated/']
            }
            actions: {
              version: {
                delete: { daysAfterCreationGreaterThan: 7 }
              }
            }
          }
        }
        {
          name: 'federated-nonce-expiry'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['federated/_nonces/'] }
            actions: {
              baseBlob: {
                delete: { daysAfterModificationGreaterThan: 1 }
              }
            }
          }
        }
      ]
    }
  }
}

// Who read, wrote or deleted which blob, and when (the caller's identity, its address, the operation): the
// data account's models, reports and records, and the anchor account's chain heads, for audits and for
// investigating a rewrite. Logs cost by volume: on the data account every scoring instance reads the
// champion pointer every MODEL_REFRESH_SECONDS, so expect tens of thousands of StorageRead lines a day.
resource blobAccessLog 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsWorkspaceId)) {
  name: 'blob-access-to-log-analytics'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

@description('Storage account name: AzureWebJobsStorage__accountName.')
output name string = account.name

@description('Storage account resource id.')
output id string = account.id

@description('Blob endpoint, e.g. https://<name>.blob.core.windows.net/.')
output blobEndpoint string = account.properties.primaryEndpoints.blob

@description('Queue endpoint: the blob trigger\'s connection names it beside the blob endpoint.')
output queueEndpoint string = account.properties.primaryEndpoints.queue
