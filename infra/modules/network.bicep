// Private networking (main.bicep's vnetEnabled): one virtual network with
//   snet-scoring    the scoring app's VNet integration (HTTP scoring, the stream, the federated API)
//   snet-pipeline   the pipeline app's VNet integration (ETL, retraining, monitoring)
//   snet-endpoints  the private endpoints of the data services (private-endpoint.bicep)
// and the private DNS zones those endpoints register in, each linked to the network, so that the apps
// resolve <account>.blob.core.windows.net and the rest to private addresses.
// Flex Consumption integrates an app with a subnet delegated to Microsoft.App/environments (not
// Microsoft.Web/serverFarms as the Premium and Dedicated plans do); the subnet holds nothing else, and
// each instance an app scales out to takes one of its addresses, so size it for maximumInstanceCount.
// The apps' outbound traffic leaves through the network; the NAT gateway gives it a way out to the
// internet (Application Insights, Entra ID, the banks' endpoints) and one fixed public address.

@description('Virtual network name.')
param name string

@description('Azure region (the function apps\' own: VNet integration needs the same region).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Address space of the network.')
param addressPrefix string = '10.40.0.0/16'

@description('The scoring app\'s integration subnet: one address per instance (a /24 holds about 250, plus Azure\'s five).')
param scoringSubnetPrefix string = '10.40.0.0/24'

@description('The pipeline app\'s integration subnet.')
param pipelineSubnetPrefix string = '10.40.1.0/24'

@description('The private endpoints\' subnet (one address per endpoint: about a dozen).')
param privateEndpointSubnetPrefix string = '10.40.2.0/26'

@description('Whether the online store (Azure Managed Redis) is deployed: then its private DNS zone is too.')
param onlineStore bool = false

@description('Give the apps\' subnets a NAT gateway: their way out to the internet, from one fixed address (banks may allow-list it). Without it the subnets rely on default outbound access, which Azure no longer gives new networks.')
param natGateway bool = true

// The zones of the private endpoints' DNS records: one per service and sub-resource (Azure public cloud).
var storageZones = [
  'privatelink.blob.${environment().suffixes.storage}'
  'privatelink.queue.${environment().suffixes.storage}'
  'privatelink.table.${environment().suffixes.storage}'
]
var serviceZones = [
  'privatelink.vaultcore.azure.net'
  'privatelink.servicebus.windows.net'
  'privatelink.postgres.database.azure.com'
]
var redisZone = 'privatelink.redis.azure.net'
var zoneNames = concat(storageZones, serviceZones, onlineStore ? [redisZone] : [])

var flexDelegation = [
  {
    name: 'flex-consumption'
    properties: { serviceName: 'Microsoft.App/environments' }
  }
]

resource natIp 'Microsoft.Network/publicIPAddresses@2024-05-01' = if (natGateway) {
  name: 'pip-${name}-nat'
  location: location
  tags: tags
  sku: { name: 'Standard', tier: 'Regional' }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource nat 'Microsoft.Network/natGateways@2024-05-01' = if (natGateway) {
  name: 'ng-${name}'
  location: location
  tags: tags
  sku: { name: 'Standard' }
  properties: {
    idleTimeoutInMinutes: 4
    publicIpAddresses: [{ id: natIp.id }]
  }
}

// The apps' subnets carry no NSG of ours: nothing listens in them (the apps' inbound traffic reaches their
// public endpoints, not the network), and Flex Consumption manages the delegated subnet's own rules.
resource vnet 'Microsoft.Network/virtualNetworks@2024-05-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressPrefix] }
    subnets: [
      {
        name: 'snet-scoring'
        properties: {
          addressPrefix: scoringSubnetPrefix
          delegations: flexDelegation
          natGateway: natGateway ? { id: nat.id } : null
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
      {
        name: 'snet-pipeline'
        properties: {
          addressPrefix: pipelineSubnetPrefix
          delegations: flexDelegation
          natGateway: natGateway ? { id: nat.id } : null
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
      {
        name: 'snet-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          privateEndpointNetworkPolicies: 'Disabled'
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for zone in zoneNames: {
    name: zone
    location: 'global'
    tags: tags
  }
]

resource links 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (zone, i) in zoneNames: {
    parent: zones[i]
    name: 'link-${name}'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: { id: vnet.id }
    }
  }
]

@description('Virtual network resource id.')
output id string = vnet.id

@description('The scoring app\'s integration subnet (functionapp.bicep: virtualNetworkSubnetId).')
output scoringSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-scoring')

@description('The pipeline app\'s integration subnet (functionapp.bicep: virtualNetworkSubnetId).')
output pipelineSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-pipeline')

@description('The private endpoints\' subnet (private-endpoint.bicep: subnetId).')
output privateEndpointSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, 'snet-endpoints')

@description('The private DNS zone of each kind of endpoint (private-endpoint.bicep: privateDnsZoneName); redis is deployed only with onlineStore.')
output privateDnsZoneNames object = {
  blob: storageZones[0]
  queue: storageZones[1]
  table: storageZones[2]
  vault: serviceZones[0]
  namespace: serviceZones[1]
  postgresqlServer: serviceZones[2]
  redisEnterprise: redisZone
}

@description('The apps\' fixed outbound address (the NAT gateway\'s); empty without one.')
output outboundIpAddress string = natGateway ? natIp.properties.ipAddress : ''
