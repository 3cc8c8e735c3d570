// The Event Grid system topic on the storage account. Flex Consumption runs blob triggers
// only from Event Grid; the subscription that feeds etl_raw_blob is in
// eventgrid-subscription.bicep, deployed once the app's code (and so its blobs_extension key) exists.

@description('System topic name.')
param name string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Storage account the topic listens to.')
param storageAccountId string

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  identity: { type: 'SystemAssigned' }
  properties: {
    source: storageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

@description('Topic name.')
output name string = topic.name

@description('The topic\'s identity: it writes undeliverable events to deadletter/ (roles.bicep).')
output principalId string = topic.identity.principalId
