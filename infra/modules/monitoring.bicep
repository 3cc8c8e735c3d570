// Log Analytics workspace and workspace-based Application Insights. Local (key) auth is off:
// the app sends telemetry with its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).

@description('Name prefix for the workspace and the component.')
param baseName string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Days Log Analytics keeps logs (30 to 730).')
@minValue(30)
@maxValue(730)
param retentionInDays int

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${baseName}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: retentionInDays
    features: { disableLocalAuth: true }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${baseName}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
    IngestionMode: 'LogAnalytics'
  }
}

@description('Log Analytics workspace id (diagnostic settings).')
output workspaceId string = workspace.id

@description('Application Insights resource id (the workbook\'s source).')
output appInsightsId string = appInsights.id

@description('Application Insights resource name (for the role assignment).')
output appInsightsName string = appInsights.name

@description('Connection string: APPLICATIONINSIGHTS_CONNECTION_STRING (not a secret; ingestion needs Entra ID).')
output connectionString string = appInsights.properties.ConnectionString
