#!/usr/bin/env bash
# Deploy fraudops to Azure: infrastructure (Bicep), code (zip deploy with remote build),
# the blob trigger's Event Grid subscription, then a smoke test of GET /api/health.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'USAGE'
usage: infra/deploy.sh ENV [--what-if]

  ENV        an environment with a parameters file in infra/parameters/ (dev, prod)
  --what-if  show what the Bicep deployment would change (az deployment group what-if); change nothing

environment variables:
  AZURE_RESOURCE_GROUP   resource group (default rg-fraudops-ENV; created if missing)
  AZURE_LOCATION         region for a new resource group (default swedencentral)
  OPERATOR_PRINCIPAL_ID  object id granted bank-key management and raw/ upload
                         (default: the signed-in user or service principal)
  OPERATOR_PRINCIPAL_TYPE  User, ServicePrincipal or Group (with OPERATOR_PRINCIPAL_ID)
USAGE
}

parse_env_and_flag --what-if "$@"
what_if=$flag_set

params=$(params_file "$env_name")
require_az
rg=$(resource_group "$env_name")
location=${AZURE_LOCATION:-swedencentral}
read -r operator_type operator_id < <(operator_principal)
[[ -n ${operator_id:-} ]] || say "no operator principal found: bank keys must be managed by someone granted 'Key Vault Secrets Officer'"
bicep_args=(-f "$INFRA_DIR/main.bicep" -p "@$params"
  -p "operatorPrincipalId=${operator_id:-}" "operatorPrincipalType=${operator_type:-User}")
if [[ $(az group exists -n "$rg") == true ]]; then  # a locked audit policy can no longer be redeployed
  account=$(deployment_output "$rg" "fraudops-$env_name" storageAccountName 2>/dev/null || true)
  if [[ -n $account && $(audit_policy_state "$rg" "$account") == Locked ]]; then
    bicep_args+=(-p auditPolicyLocked=true)
  fi
fi

if ((what_if)); then
  if [[ $(az group exists -n "$rg") != true ]]; then
    say "resource group $rg does not exist: a deployment would create it and every resource in main.bicep"
    exit 0
  fi
  say "what-if for $rg (nothing is changed)"
  az deployment group what-if -g "$rg" "${bicep_args[@]}" -p deployEventSubscription=false
  exit 0
fi

command -v curl >/dev/null 2>&1 || die "curl is needed for the smoke test"
command -v git >/dev/null 2>&1 || die "git is needed to package the code (git archive)"

if [[ $(az group exists -n "$rg") != true ]]; then
  say "creating resource group $rg in $location"
  az group create -n "$rg" -l "$location" --tags workload=fraudops "environment=$env_name" -o none
fi

say "phase 1/2: infrastructure ($rg, $(basename "$params"))"
az deployment group create -g "$rg" -n "fraudops-$env_name" "${bicep_args[@]}" \
  -p deployEventSubscription=false -o none
app=$(deployment_output "$rg" "fraudops-$env_name" functionAppName)
host=$(deployment_output "$rg" "fraudops-$env_name" functionAppHostName)
vault=$(deployment_output "$rg" "fraudops-$env_name" keyVaultName)
ensure_admin_key "$vault" fl-admin-key
ensure_admin_key "$vault" admin-key
ensure_admin_key "$vault" customer-pseudonym-key
ensure_admin_key "$vault" audit-chain-key
ensure_admin_key "$vault" fl-server-signing-key
if [[ $env_name == prod ]]; then
  lock_audit_policy "$rg" "$(deployment_output "$rg" "fraudops-$env_name" storageAccountName)"
  lock_audit_policy "$rg" "$(deployment_output "$rg" "fraudops-$env_name" anchorStorageAccountName)" anchors
fi

say "publishing the code to $app (the last commit; remote build installs requirements.txt)"
git -C "$ROOT_DIR" diff --quiet HEAD -- || say "warning: uncommitted changes are not deployed"
package=$(mktemp -d)/app.zip
git -C "$ROOT_DIR" archive --format=zip -o "$package" HEAD \
  function_app.py host.json requirements.txt contracts functions api shared training fraudops_bank
az functionapp deployment source config-zip -g "$rg" -n "$app" --src "$package" --build-remote true -o none
rm -f "$package"

key=$(function_key "$rg" "$app")
curl -sS -o /dev/null -H "x-functions-key: $key" "https://$host/api/health" || true  # wakes the host
wait_for_blobs_key "$rg" "$app"

say "phase 2/2: the blob trigger's Event Grid subscription"
az deployment group create -g "$rg" -n "fraudops-$env_name" "${bicep_args[@]}" \
  -p deployEventSubscription=true -o none

smoke_test "$host" "$key"
say "deployed: https://$host/api  (function key: az functionapp keys list -g $rg -n $app)"
