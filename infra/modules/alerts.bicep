// Alert rules and the action group that pages someone. The bands are the monitoring run's
// (shared/monitoring/alerts.py; tests/infra/test_alerts.py checks they agree). Each rule is a log
// query over the workspace that Application Insights writes to: AppMetrics holds the OpenTelemetry
// metrics the app exports (fraudops.*, dimensions in Properties), AppRequests the host's requests.

@description('Name prefix for the rules and the action group.')
param baseName string

@description('Azure region of the rules (the action group is global).')
param location string

@description('Tags applied to every resource.')
param tags object

@description('Log Analytics workspace the rules query (Application Insights writes to it).')
param workspaceId string

@description('Who is told when an alert fires; empty: the action group has no receiver yet (add one in the portal).')
param alertEmail string = ''

@description('How often the rules run (ISO 8601 duration).')
param evaluationFrequency string = 'PT15M'

@description('The window each run looks back over (ISO 8601 duration).')
param windowSize string = 'PT1H'

// The same edges as shared/monitoring/alerts.py BANDS: warning, then critical.
var bands = {
  recall: { warning: json('0.8'), critical: json('0.6') }
  missed_frauds: { warning: 10, critical: 25 }
  score_drift_psi: { warning: json('0.1'), critical: json('0.3') }
  feature_drift_psi: { warning: json('0.1'), critical: json('0.3') }
  latency_p95_ms: { warning: 250, critical: 1000 }
  deadletter_rate: { warning: json('0.01'), critical: json('0.05') }
  api_error_share: { warning: json('0.01'), critical: json('0.05') }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${baseName}'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: take('fraudops', 12)
    enabled: true
    emailReceivers: empty(alertEmail) ? [] : [
      { name: 'on-call', emailAddress: alertEmail, useCommonAlertSchema: true }
    ]
  }
}

// One rule per line: name, severity (0 critical .. 4 verbose), what it means, and a query that returns
// rows only when the band is crossed.
var monitorVerdict = 'AppMetrics | where Name == "fraudops.monitor.alert" | extend check = tostring(Properties["check"]) | summarize level = max(Max) by check'
var rules = [
  {
    name: 'monitor-critical'
    severity: 1
    description: 'A check of the daily monitoring run is critical (recall, missed frauds, drift, latency, dead letters, retraining, federated rounds): reports/monitoring/<day>.html says which and why.'
    query: '${monitorVerdict} | where level >= 2'
  }
  {
    name: 'monitor-warning'
    severity: 2
    description: 'A check of the daily monitoring run is in its warning band.'
    query: '${monitorVerdict} | where level == 1'
  }
  {
    name: 'api-5xx-critical'
    severity: 1
    description: 'More than ${bands.api_error_share.critical * 100}% of scoring requests failed with a 5xx.'
    query: 'AppMetrics | where Name == "fraudops.http.requests" | extend cls = tostring(Properties["http.response.status_class"]) | summarize total = sum(Sum), errors = sumif(Sum, cls == "5xx") | where total > 0 and errors / total > ${bands.api_error_share.critical}'
  }
  {
    name: 'api-5xx-warning'
    severity: 2
    description: 'More than ${bands.api_error_share.warning * 100}% of scoring requests failed with a 5xx.'
    query: 'AppMetrics | where Name == "fraudops.http.requests" | extend cls = tostring(Properties["http.response.status_class"]) | summarize total = sum(Sum), errors = sumif(Sum, cls == "5xx") | where total > 0 and errors / total > ${bands.api_error_share.warning}'
  }
  {
    name: 'latency-p95'
    severity: 2
    description: 'The 95th percentile of the host\'s request duration is over ${bands.latency_p95_ms.warning} ms.'
    query: 'AppRequests | summarize p95 = percentile(DurationMs, 95), n = count() | where n > 20 and p95 > ${bands.latency_p95_ms.warning}'
  }
  {
    name: 'deadletter-rate'
    severity: 2
    description: 'More than ${bands.deadletter_rate.warning * 100}% of stream events were dead-lettered: deadletter/ holds each with its reason.'
    query: 'AppMetrics | where Name == "fraudops.stream.events" | extend outcome = tostring(Properties["outcome"]) | summarize scored = sumif(Sum, outcome == "scored"), dead = sumif(Sum, outcome == "deadlettered") | where scored + dead > 0 and dead / (scored + dead) > ${bands.deadletter_rate.warning}'
  }
  {
    name: 'retrain-failed'
    severity: 1
    description: 'A retraining run failed; the champion is untouched. reports/training/failed-*.json and MLflow say why.'
    query: 'AppMetrics | where Name == "fraudops.retrain.runs" and tostring(Properties["outcome"]) == "failed" | summarize failed = sum(Sum) | where failed > 0'
  }
  {
    name: 'predictions-not-recorded'
    severity: 2
    description: 'Served predictions were dropped instead of recorded (storage slow or unreachable): the audit trail and the delayed-label join miss them.'
    query: 'AppMetrics | where Name == "fraudops.predictions.dropped" | summarize dropped = sum(Sum) | where dropped > 0'
  }
  {
    name: 'code-package-written'
    severity: 2
    description: 'A function app\'s code package (app-package in its host account) was written. Expected once per deployment (deploy.sh, azd deploy); at any other time, someone or something holding the deployment identity replaced the code: compare the caller in StorageBlobLogs with the deployment\'s.'
    query: 'StorageBlobLogs | where Uri has "/app-package/" and OperationName in ("PutBlob", "PutBlockList", "CopyBlob", "SetBlobProperties", "DeleteBlob") | project TimeGenerated, AccountName, OperationName, Uri, RequesterObjectId, CallerIpAddress'
  }
]

resource alertRules 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = [for rule in rules: {
  name: 'alert-${baseName}-${rule.name}'
  location: location
  tags: tags
  properties: {
    displayName: 'fraudops: ${rule.name}'
    description: rule.description
    severity: rule.severity
    enabled: true
    evaluationFrequency: evaluationFrequency
    windowSize: windowSize
    scopes: [workspaceId]
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: rule.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}]

// Retraining that did not run at all (the timer stopped, the app is down): no outcome in 26 hours.
resource retrainMissing 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: 'alert-${baseName}-retrain-missing'
  location: location
  tags: tags
  properties: {
    displayName: 'fraudops: retrain-missing'
    description: 'No retraining run finished in 26 hours: the nightly timer did not run or did not finish.'
    severity: 2
    enabled: true
    evaluationFrequency: 'PT1H'
    windowSize: 'P1D'
    scopes: [workspaceId]
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'AppMetrics | where Name == "fraudops.retrain.runs" | where TimeGenerated > ago(26h)'
          timeAggregation: 'Count'
          operator: 'LessThan'
          threshold: 1
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: { actionGroups: [actionGroup.id] }
  }
}

@description('The action group the rules notify.')
output actionGroupId string = actionGroup.id

@description('Names of the alert rules of the loop (retrain-missing besides).')
output ruleNames array = [for rule in rules: 'alert-${baseName}-${rule.name}']
