#!/usr/bin/env bash
# azd's postdeploy hook (azure.yaml): once `azd deploy` has published both apps' packages, create the
# generated secrets, deploy the blob trigger's Event Grid subscription (a second `azd provision`),
# and smoke-test the API. infra/deploy.sh does the same without azd.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=postgres-role.sh
source "$(dirname "$0")/postgres-role.sh"

require_az
rg=${AZURE_RESOURCE_GROUP:?azd sets AZURE_RESOURCE_GROUP}
scoring_app=${SCORINGAPPNAME:?azd sets SCORINGAPPNAME from main.bicep outputs}
scoring_host=${SCORINGAPPHOSTNAME:?azd sets SCORINGAPPHOSTNAME from main.bicep outputs}
pipeline_app=${PIPELINEAPPNAME:?azd sets PIPELINEAPPNAME from main.bicep outputs}
pipeline_host=${PIPELINEAPPHOSTNAME:?azd sets PIPELINEAPPHOSTNAME from main.bicep outputs}
ensure_secrets "${KEYVAULTNAME:?azd sets KEYVAULTNAME from main.bicep outputs}" \
  "${SHAREDKEYVAULTNAME:?azd sets SHAREDKEYVAULTNAME from main.bicep outputs}"
if [[ -n ${MLFLOWHOST:-} && ${VNETENABLED:-false} != true ]]; then
  grant_mlflow_role "$MLFLOWHOST" "${PIPELINEIDENTITYNAME:?}" "${PIPELINEIDENTITYPRINCIPALID:?}" mlflow "${POSTGRES_ADMIN_ROLE:-}"
elif [[ -n ${MLFLOWHOST:-} ]]; then
  say "private networking: run grant_mlflow_role $MLFLOWHOST $PIPELINEIDENTITYNAME $PIPELINEIDENTITYPRINCIPALID from inside the VNet"
fi
if [[ ${FRAUDOPS_ENV:-dev} == prod ]]; then
  lock_audit_policy "$rg" "${STORAGEACCOUNTNAME:?azd sets STORAGEACCOUNTNAME from main.bicep outputs}"
  lock_audit_policy "$rg" "${ANCHORSTORAGEACCOUNTNAME:?azd sets ANCHORSTORAGEACCOUNTNAME from main.bicep outputs}" anchors
  azd env set AUDIT_POLICY_LOCKED true  # later provisions leave the locked policy alone
fi

scoring_key=$(function_key "$rg" "$scoring_app")
pipeline_key=$(function_key "$rg" "$pipeline_app")
curl -sS -o /dev/null -H "x-functions-key: $pipeline_key" "https://$pipeline_host/api/openapi.json" || true  # wakes it
if [[ ${DEPLOY_EVENT_SUBSCRIPTION:-false} != true ]]; then
  wait_for_blobs_key "$rg" "$pipeline_app"
  azd env set DEPLOY_EVENT_SUBSCRIPTION true
  azd provision --no-prompt
fi
smoke_test_pipeline "$pipeline_host" "$pipeline_key"
smoke_test "$scoring_host" "$scoring_key"
