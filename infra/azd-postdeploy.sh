#!/usr/bin/env bash
# azd's postdeploy hook (azure.yaml): once `azd deploy` has published the code, create the
# admin key, deploy the blob trigger's Event Grid subscription (a second `azd provision`),
# and smoke-test the API. infra/deploy.sh does the same without azd.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

require_az
rg=${AZURE_RESOURCE_GROUP:?azd sets AZURE_RESOURCE_GROUP}
app=${FUNCTIONAPPNAME:?azd sets FUNCTIONAPPNAME from main.bicep outputs}
host=${FUNCTIONAPPHOSTNAME:?azd sets FUNCTIONAPPHOSTNAME from main.bicep outputs}
ensure_admin_key "${KEYVAULTNAME:?azd sets KEYVAULTNAME from main.bicep outputs}" fl-admin-key
ensure_admin_key "$KEYVAULTNAME" admin-key
ensure_admin_key "$KEYVAULTNAME" customer-pseudonym-key
ensure_admin_key "$KEYVAULTNAME" audit-chain-key
ensure_admin_key "$KEYVAULTNAME" fl-server-signing-key
if [[ ${FRAUDOPS_ENV:-dev} == prod ]]; then
  lock_audit_policy "$rg" "${STORAGEACCOUNTNAME:?azd sets STORAGEACCOUNTNAME from main.bicep outputs}"
  lock_audit_policy "$rg" "${ANCHORSTORAGEACCOUNTNAME:?azd sets ANCHORSTORAGEACCOUNTNAME from main.bicep outputs}" anchors
  azd env set AUDIT_POLICY_LOCKED true  # later provisions leave the locked policy alone
fi

key=$(function_key "$rg" "$app")
curl -sS -o /dev/null -H "x-functions-key: $key" "https://$host/api/health" || true  # wakes the host
if [[ ${DEPLOY_EVENT_SUBSCRIPTION:-false} != true ]]; then
  wait_for_blobs_key "$rg" "$app"
  azd env set DEPLOY_EVENT_SUBSCRIPTION true
  azd provision --no-prompt
fi
smoke_test "$host" "$key"
