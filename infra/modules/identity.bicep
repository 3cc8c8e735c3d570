// The app's user-assigned managed identity: storage, Event Hubs, Key Vault and App Insights
// all trust this one identity, so nothing in the app holds a key or a connection string.

@description('Name of the user-assigned managed identity.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

@description('Resource id, for the function app identity and Key Vault references.')
output id string = identity.id

@description('Client id: AzureWebJobsStorage__clientId and the other __clientId settings.')
output clientId string = identity.properties.clientId

@description('Principal (object) id, for role assignments.')
output principalId string = identity.properties.principalId

@description('The identity\'s name (its role name in Entra-authenticated databases).')
output name string = identity.name
