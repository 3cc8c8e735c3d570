// Key Vault in RBAC mode: the app reads static secrets through Key Vault references
// (FL_ADMIN_KEY) and each bank's federated-learning key through the SDK (fl-bank-<id>).

@description('Vault name (3-24 characters).')
@minLength(3)
@maxLength(24)
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Days a deleted vault or secret can be recovered (7-90). Purge protection makes this binding.')
@minValue(7)
@maxValue(90)
param softDeleteRetentionDays int

@description('Log Analytics workspace that receives the vault\'s audit log (every secret read).')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: no fixed outbound IPs to allow without VNet integration; access is RBAC-only through Entra ID
  // checkov:skip=CKV_AZURE_189: Key Vault references and the SDK reach it from the Flex app without a VNet; access is RBAC-only
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForTemplateDeployment: false
    enabledForDiskEncryption: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource audit 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [{ categoryGroup: 'audit', enabled: true }]
  }
}

@description('Vault name (role assignments).')
output name string = vault.name

@description('Vault URI: KEY_VAULT_URL, and the base of Key Vault references.')
output uri string = vault.properties.vaultUri
