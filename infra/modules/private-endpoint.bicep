// One private endpoint: a service's sub-resource (a storage account's blob, a vault, a namespace, a server)
// given an address in the network's endpoints subnet, and its DNS record written into the private DNS zone
// of its kind (network.bicep creates the zones and links them to the network), so the service's usual host
// name resolves to that address inside the network. The service itself closes its public endpoint through
// its own module's privateNetworking parameter.

@description('Private endpoint name.')
param name string

@description('Azure region (the network\'s).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('The endpoints subnet (network.bicep: privateEndpointSubnetId).')
param subnetId string

@description('Resource id of the service the endpoint connects to.')
param targetResourceId string

@description('The sub-resource (group id): blob, queue or table (storage), vault, namespace (Event Hubs), postgresqlServer, redisEnterprise.')
@allowed(['blob', 'queue', 'table', 'vault', 'namespace', 'postgresqlServer', 'redisEnterprise'])
param groupId string

@description('The private DNS zone for that sub-resource, in this resource group (network.bicep: privateDnsZoneNames[groupId]).')
param privateDnsZoneName string

resource zone 'Microsoft.Network/privateDnsZones@2024-06-01' existing = {
  name: privateDnsZoneName
}

resource endpoint 'Microsoft.Network/privateEndpoints@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    subnet: { id: subnetId }
    customNetworkInterfaceName: 'nic-${name}'
    privateLinkServiceConnections: [
      {
        name: name
        properties: {
          privateLinkServiceId: targetResourceId
          groupIds: [groupId]
        }
      }
    ]
  }
}

resource dns 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-05-01' = {
  parent: endpoint
  name: 'default'
  properties: {
    privateDnsZoneConfigs: [
      {
        name: replace(privateDnsZoneName, '.', '-')
        properties: { privateDnsZoneId: zone.id }
      }
    ]
  }
}

@description('Private endpoint resource id.')
output id string = endpoint.id
