// The online store of entity state (behavioural features at scoring, docs/behaviour.md): Azure Managed
// Redis with Entra ID authentication only (access keys disabled: no password exists), TLS on port 10000,
// the app's user-assigned identity given the database's default access policy. The Enterprise clustering
// policy shows one endpoint; every command the app sends touches one key (one record per entity, a
// compare-and-set script per record), so it holds in a cluster. No eviction: a record leaves by its own
// expiry (past the longest window), never because memory ran short.

@description('Cache name (globally unique).')
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('The app\'s user-assigned identity\'s principal (object) id: its Entra ID token is its Redis password.')
param identityPrincipalId string

@description('Azure Managed Redis SKU (Balanced_B0 is the smallest; size it by entities x steps, docs/behaviour.md).')
param skuName string = 'Balanced_B0'

@description('Replicate to a second node (prod).')
param highAvailability bool = false

@description('Private networking (main.bicep\'s vnetEnabled): close the public endpoint; the scoring app reaches the cache through its private endpoint. false (the default): public endpoint, Entra ID the gate (access keys are off).')
param privateNetworking bool = false

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: skuName }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability ? 'Enabled' : 'Disabled'
    // A property of its own since API 2025-07-01, hence that version.
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'NoEviction'
    accessKeysAuthentication: 'Disabled'
  }
}

resource appAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: database
  name: 'fraudopsapp'
  properties: {
    accessPolicyName: 'default'
    user: { objectId: identityPrincipalId }
  }
}

@description('Cluster resource id (its private endpoint).')
output id string = cluster.id

@description('ONLINE_STORE_URL: TLS to the database\'s endpoint.')
output url string = 'rediss://${cluster.properties.hostName}:10000/0'
