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

@description('Private networking (main.bicep\'s vnetEnabled): close the public endpoint; the apps reach the vault through its private endpoint. false (the default): public endpoint, RBAC the gate. Caution: Flex Consumption documents that Key Vault references cannot resolve from a network-restricted vault, even with VNet integration; the app settings that are references (FL_ADMIN_KEY, ADMIN_KEY, ...) must then be read through the SDK instead.')
param privateNetworking bool = false

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: default-deny is the privateNetworking parameter (vnetEnabled); without VNet integration there are no fixed outbound IPs to allow; access is RBAC-only through Entra ID
  // checkov:skip=CKV_AZURE_189: the public endpoint is the privateNetworking parameter (vnetEnabled): Disabled with a private endpoint; without a VNet, Key Vault references and the SDK reach it from the Flex app; access is RBAC-only
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
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: privateNetworking ? 'Deny' : 'Allow'
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

@description('Vault resource id (its private endpoint).')
output id string = vault.id

@description('Vault name (role assignments).')
output name string = vault.name

@description('Vault URI: KEY_VAULT_URL, and the base of Key Vault references.')
output uri string = vault.properties.vaultUri
