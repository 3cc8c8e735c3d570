#!/usr/bin/env bash
# Deploy fraudops to Azure: infrastructure (Bicep), the two apps' packages (built here from their hashed locks by
# scripts/build_package.py, zip-deployed without a remote build), the blob trigger's Event Grid subscription,
# then a smoke test of each app.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=postgres-role.sh
source "$(dirname "$0")/postgres-role.sh"

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
read -r operator_type operator_id operator_name < <(operator_principal)
[[ -n ${operator_id:-} ]] || say "no operator principal found: bank keys must be managed by someone granted 'Key Vault Secrets Officer'"
bicep_args=(-f "$INFRA_DIR/main.bicep" -p "@$params"
  -p "operatorPrincipalId=${operator_id:-}" "operatorPrincipalType=${operator_type:-User}" \
  "operatorPrincipalName=${operator_name:-}")
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
require_package_builder

if [[ $(az group exists -n "$rg") != true ]]; then
  say "creating resource group $rg in $location"
  az group create -n "$rg" -l "$location" --tags workload=fraudops "environment=$env_name" -o none
fi

say "phase 1/2: infrastructure ($rg, $(basename "$params"))"
az deployment group create -g "$rg" -n "fraudops-$env_name" "${bicep_args[@]}" \
  -p deployEventSubscription=false -o none
scoring_app=$(deployment_output "$rg" "fraudops-$env_name" scoringAppName)
scoring_host=$(deployment_output "$rg" "fraudops-$env_name" scoringAppHostName)
pipeline_app=$(deployment_output "$rg" "fraudops-$env_name" pipelineAppName)
pipeline_host=$(deployment_output "$rg" "fraudops-$env_name" pipelineAppHostName)
vault=$(deployment_output "$rg" "fraudops-$env_name" keyVaultName)
shared_vault=$(deployment_output "$rg" "fraudops-$env_name" sharedKeyVaultName)
ensure_secrets "$vault" "$shared_vault"
ensure_mlflow_role "$rg" "fraudops-$env_name"
if [[ $env_name == prod ]]; then
  lock_audit_policy "$rg" "$(deployment_output "$rg" "fraudops-$env_name" storageAccountName)"
  lock_audit_policy "$rg" "$(deployment_output "$rg" "fraudops-$env_name" anchorStorageAccountName)" anchors
fi

git -C "$ROOT_DIR" diff --quiet HEAD -- || say "warning: uncommitted changes are not deployed"
build=$(mktemp -d)
for role in scoring pipeline; do
  name=$scoring_app
  [[ $role == pipeline ]] && name=$pipeline_app
  say "building the $role package from deploy/$role/requirements.lock (the last commit)"
  build_package "$role" "$build"
  say "publishing it to $name (no remote build: the package holds its locked dependencies)"
  az functionapp deployment source config-zip -g "$rg" -n "$name" --src "$build/$role.zip" --build-remote false -o none
done
rm -rf "$build"

scoring_key=$(function_key "$rg" "$scoring_app")
pipeline_key=$(function_key "$rg" "$pipeline_app")
curl -sS -o /dev/null -H "x-functions-key: $pipeline_key" "https://$pipeline_host/api/openapi.json" || true  # wakes it
wait_for_blobs_key "$rg" "$pipeline_app"

say "phase 2/2: the blob trigger's Event Grid subscription"
az deployment group create -g "$rg" -n "fraudops-$env_name" "${bicep_args[@]}" \
  -p deployEventSubscription=true -o none

smoke_test_pipeline "$pipeline_host" "$pipeline_key"
smoke_test "$scoring_host" "$scoring_key"
say "deployed: scoring https://$scoring_host/api  (function key: az functionapp keys list -g $rg -n $scoring_app)"
say "deployed: pipeline https://$pipeline_host/api  (function key: az functionapp keys list -g $rg -n $pipeline_app)"
