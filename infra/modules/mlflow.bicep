// MLflow's tracking and registry store that outlives an instance: Azure Database for PostgreSQL
// Flexible Server with Entra ID authentication only (no password exists), the app's user-assigned
// identity as its Entra administrator. The app opens it with a fresh token per run
// (training/tracking.py resolve: MLFLOW_TRACKING_URI holds {entra_token} where a password would be);
// artifacts go to the data account's mlflow container (MLFLOW_ARTIFACT_ROOT), under the app's role.
// Why not Azure Machine Learning's managed MLflow: its client plugin (azureml-mlflow) does not
// resolve beside the mlflow-skinny the app pins, and a workspace brings its own storage, Key Vault
// and registry to run; a small PostgreSQL server is the store MLflow documents first.

@description('Server name (globally unique).')
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('The app\'s user-assigned identity: its name (the PostgreSQL role) and principal id.')
param identityName string
param identityPrincipalId string

@description('Compute tier and size (Burstable B1ms is enough for one run a night).')
param skuName string = 'Standard_B1ms'
@allowed(['Burstable', 'GeneralPurpose', 'MemoryOptimized'])
param skuTier string = 'Burstable'

@description('Days of point-in-time restore.')
@minValue(7)
@maxValue(35)
param backupRetentionDays int = 14

@description('Geo-redundant backups (prod).')
param geoRedundantBackup bool = false

resource server 'Microsoft.DBforPostgreSQL/flexibleServers@2024-08-01' = {
  name: name
  location: location
  tags: tags
  sku: { name: skuName, tier: skuTier }
  properties: {
    version: '16'
    storage: { storageSizeGB: 32, autoGrow: 'Enabled' }
    backup: { backupRetentionDays: backupRetentionDays, geoRedundantBackup: geoRedundantBackup ? 'Enabled' : 'Disabled' }
    authConfig: { activeDirectoryAuth: 'Enabled', passwordAuth: 'Disabled', tenantId: subscription().tenantId }
    network: { publicNetworkAccess: 'Enabled' }
    highAvailability: { mode: 'Disabled' }
  }
}

// Flex Consumption's outbound addresses are not fixed without a virtual network: allow Azure's own
// services; Entra ID authentication is what keeps everyone else out (no password exists to guess).
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = {
  parent: server
  name: 'AllowAllAzureServicesAndResourcesWithinAzureIps'
  properties: { startIpAddress: '0.0.0.0', endIpAddress: '0.0.0.0' }
}

resource requireTls 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'require_secure_transport'
  properties: { value: 'on', source: 'user-override' }
}

resource logConnections 'Microsoft.DBforPostgreSQL/flexibleServers/configurations@2024-08-01' = {
  parent: server
  name: 'log_connections'
  properties: { value: 'on', source: 'user-override' }
  dependsOn: [requireTls]
}

resource admin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = {
  parent: server
  name: identityPrincipalId
  properties: { principalType: 'ServicePrincipal', principalName: identityName, tenantId: subscription().tenantId }
  dependsOn: [allowAzure, logConnections]
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: 'mlflow'
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
}

@description('MLFLOW_TRACKING_URI: the identity\'s role, a token placeholder for the password, TLS required.')
output trackingUri string = 'postgresql+psycopg2://${identityName}:{entra_token}@${server.properties.fullyQualifiedDomainName}:5432/${database.name}?sslmode=require'
