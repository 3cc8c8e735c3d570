// MLflow's tracking and registry store that outlives an instance: Azure Database for PostgreSQL
// Flexible Server with Entra ID authentication only (no password exists). Two principals, kept apart:
//   the administrator (administratorPrincipal*): the operator who deploys, or better an Entra group of
//     operators; it creates the app's role and grants it, nothing else signs in with it;
//   the app (identityName/identityPrincipalId: the pipeline app's identity, which trains): a role that
//     infra/postgres-role.sh creates with pgaadauth_create_principal_with_oid, not an administrator, not a
//     member of azure_pg_admin, allowed to connect to the mlflow database only and to create and own the
//     tables MLflow's migrations make in its public schema.
// The app opens the store with a fresh token per run (training/tracking.py resolve: MLFLOW_TRACKING_URI
// holds {entra_token} where a password would be); artifacts go to the data account's mlflow container
// (MLFLOW_ARTIFACT_ROOT), under the app's role.
// Why not Azure Machine Learning's managed MLflow: its client plugin (azureml-mlflow) does not
// resolve beside the mlflow-skinny the app pins, and a workspace brings its own storage, Key Vault
// and registry to run; a small PostgreSQL server is the store MLflow documents first.

@description('Server name (globally unique).')
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('The identity of the app that writes to the store (the pipeline app\'s): its name is its PostgreSQL role in MLFLOW_TRACKING_URI. Never the administrator: infra/postgres-role.sh gives it a role on the mlflow database only.')
param identityName string

@description('That identity\'s principal (object) id: postgres-role.sh creates its role from it.')
param identityPrincipalId string

@description('Object id of the server\'s Entra administrator: an Entra group of operators (recommended), or the user or service principal that deploys; never the app\'s identity (a principal equal to identityPrincipalId is refused: no administrator is set). Empty: none is set, and nobody can sign in until one is (az postgres flexible-server microsoft-entra-admin create).')
param administratorPrincipalId string = ''

@description('The administrator\'s name as Entra ID shows it (a user\'s UPN, a group\'s or service principal\'s display name): PostgreSQL names its role after it.')
param administratorPrincipalName string = ''

@description('Type of administratorPrincipalId.')
@allowed(['User', 'Group', 'ServicePrincipal'])
param administratorPrincipalType string = 'User'

@description('Private networking (main.bicep\'s vnetEnabled): no public endpoint and no firewall rule; the pipeline app reaches the server through its private endpoint (private-endpoint.bicep, group postgresqlServer). false (the default): public endpoint open to Azure\'s addresses, Entra ID the gate.')
param privateNetworking bool = false

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
    network: { publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled' }
    highAvailability: { mode: 'Disabled' }
  }
}

// Without a virtual network, Flex Consumption's outbound addresses are not fixed: allow Azure's own
// services; Entra ID authentication is what keeps everyone else out (no password exists to guess).
// With one, the server has no public endpoint, and no rule.
resource allowAzure 'Microsoft.DBforPostgreSQL/flexibleServers/firewallRules@2024-08-01' = if (!privateNetworking) {
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

resource admin 'Microsoft.DBforPostgreSQL/flexibleServers/administrators@2024-08-01' = if (!empty(administratorPrincipalId) && toLower(administratorPrincipalId) != toLower(identityPrincipalId)) {
  parent: server
  name: empty(administratorPrincipalId) ? 'none' : administratorPrincipalId
  properties: {
    principalType: administratorPrincipalType
    principalName: administratorPrincipalName
    tenantId: subscription().tenantId
  }
  dependsOn: [allowAzure, logConnections]
}

resource database 'Microsoft.DBforPostgreSQL/flexibleServers/databases@2024-08-01' = {
  parent: server
  name: 'mlflow'
  properties: { charset: 'UTF8', collation: 'en_US.utf8' }
}

@description('Server name (postgres-role.sh).')
output serverName string = server.name

@description('Server resource id (its private endpoint).')
output id string = server.id

@description('Server host name (postgres-role.sh connects to it).')
output host string = server.properties.fullyQualifiedDomainName

@description('The database MLflow uses.')
output databaseName string = database.name

@description('MLFLOW_TRACKING_URI: the identity\'s role, a token placeholder for the password, TLS required.')
output trackingUri string = 'postgresql+psycopg2://${identityName}:{entra_token}@${server.properties.fullyQualifiedDomainName}:5432/${database.name}?sslmode=require'
