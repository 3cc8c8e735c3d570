// The operations workbook: the monitoring report's panels (shared/monitoring/report.py PANELS, in
// that order; tests/infra/test_alerts.py checks they agree), live from Application Insights.

@description('Name prefix (the workbook\'s display name).')
param baseName string

@description('Azure region.')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Application Insights component the queries run against.')
param appInsightsId string

var metric = 'AppMetrics | where Name == '
var panels = [
  {
    name: 'traffic'
    title: 'Predictions served (HTTP and stream)'
    query: '${metric}"fraudops.score.transactions" | summarize served = sum(Sum) by source = tostring(Properties["source"]), bin(TimeGenerated, 1h)'
    visualization: 'timechart'
  }
  {
    name: 'latency'
    title: 'Request duration p50 / p95 / p99 (ms)'
    query: 'AppRequests | summarize p50 = percentile(DurationMs, 50), p95 = percentile(DurationMs, 95), p99 = percentile(DurationMs, 99) by bin(TimeGenerated, 15m)'
    visualization: 'timechart'
  }
  {
    name: 'flagged'
    title: 'Share flagged'
    query: '${metric}"fraudops.score.transactions" or Name == "fraudops.score.flagged" | summarize n = sumif(Sum, Name == "fraudops.score.transactions"), f = sumif(Sum, Name == "fraudops.score.flagged") by bin(TimeGenerated, 1h) | extend share_flagged = f / n | project TimeGenerated, share_flagged'
    visualization: 'timechart'
  }
  {
    name: 'scores'
    title: 'Score distribution (by band, upper edge) and model version in use'
    query: '${metric}"fraudops.score.band" | summarize n = sum(Sum) by band = tostring(Properties["band"]), model_version = tostring(Properties["model_version"]) | order by todouble(band) asc'
    visualization: 'barchart'
  }
  {
    name: 'realised'
    title: 'Realised precision and recall (daily monitoring run, labelled transactions)'
    query: '${metric}"fraudops.monitor.value" | extend check = tostring(Properties["check"]) | where check in ("recall", "precision", "coverage") | summarize value = max(Max) by check, bin(TimeGenerated, 1d)'
    visualization: 'linechart'
  }
  {
    name: 'drift'
    title: 'Drift: PSI of scores and of the most shifted feature (daily)'
    query: '${metric}"fraudops.monitor.value" | extend check = tostring(Properties["check"]) | where check in ("score_drift_psi", "feature_drift_psi") | summarize psi = max(Max) by check, bin(TimeGenerated, 1d)'
    visualization: 'linechart'
  }
  {
    name: 'deadletters'
    title: 'Stream events by outcome, lag and spool'
    query: '${metric}"fraudops.stream.events" | summarize events = sum(Sum) by outcome = tostring(Properties["outcome"]), bin(TimeGenerated, 1h)'
    visualization: 'timechart'
  }
  {
    name: 'retrains'
    title: 'Retraining runs by outcome'
    query: '${metric}"fraudops.retrain.runs" | summarize runs = sum(Sum) by outcome = tostring(Properties["outcome"]), bin(TimeGenerated, 1d)'
    visualization: 'barchart'
  }
  {
    name: 'rounds'
    title: 'Federated round transitions'
    query: '${metric}"fraudops.federated.transitions" | summarize transitions = sum(Sum) by status = tostring(Properties["status"]), bin(TimeGenerated, 1d)'
    visualization: 'barchart'
  }
]

var panelItems = [for p in panels: {
  type: 3
  name: p.name
  content: {
    version: 'KqlItem/1.0'
    query: p.query
    title: p.title
    size: 0
    timeContext: { durationMs: 604800000 }
    queryType: 0
    resourceType: 'microsoft.insights/components'
    visualization: p.visualization
  }
}]

var about = {
  type: 1
  name: 'about'
  content: { json: '## fraudops operations\nThe daily monitoring run\'s full report is reports/monitoring/<day>.html in the data account.' }
}

var content = {
  version: 'Notebook/1.0'
  items: concat([about], panelItems)
  isLocked: false
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, baseName, 'fraudops-operations')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'fraudops operations (${baseName})'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: string(content)
  }
}

@description('The workbook\'s resource id.')
output workbookId string = workbook.id
