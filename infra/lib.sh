#!/usr/bin/env bash
# Shared by deploy.sh, destroy.sh and azd-postdeploy.sh (sourced, not run).
# shellcheck disable=SC2034  # variables set here are read by the scripts that source it

INFRA_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(dirname "$INFRA_DIR")

die() { printf 'error: %s\n' "$*" >&2; exit 1; }
say() { printf '==> %s\n' "$*" >&2; }

# Arguments: ENV and one optional flag (--what-if, --yes). Sets env_name and flag_set; the
# calling script defines usage().
parse_env_and_flag() {
  local flag=$1
  shift
  env_name="" flag_set=0
  while (($#)); do
    case $1 in
      "$flag") flag_set=1 ;;
      -h | --help) usage; exit 0 ;;
      -*) usage >&2; die "unknown option: $1" ;;
      *) [[ -z $env_name ]] || die "one environment at a time (got '$env_name' and '$1')"; env_name=$1 ;;
    esac
    shift
  done
  [[ -n $env_name ]] || { usage >&2; exit 2; }
}

# The parameters file of an environment; dies with the list of known ones.
params_file() {
  local env=$1 file="$INFRA_DIR/parameters/$1.json"
  if [[ ! -f $file ]]; then
    local known="" f
    for f in "$INFRA_DIR"/parameters/*.json; do [[ -e $f ]] && known+="$(basename "$f" .json) "; done
    die "unknown environment '$env': no infra/parameters/$env.json (known: ${known:-none})"
  fi
  printf '%s\n' "$file"
}

# The Azure CLI must be installed and logged in; say how to fix it when it is not.
require_az() {
  command -v az >/dev/null 2>&1 ||
    die "the Azure CLI (az) is not installed: see https://learn.microsoft.com/cli/azure/install-azure-cli"
  az account show --only-show-errors >/dev/null 2>&1 ||
    die "the Azure CLI is not logged in: run 'az login' (and 'az account set -s <subscription>')"
}

resource_group() { printf '%s\n' "${AZURE_RESOURCE_GROUP:-rg-fraudops-$1}"; }

# Type, object id and name ("User <id> <upn>") of whoever runs the script: granted bank-key management and raw/
# upload, and MLflow's PostgreSQL administrator unless POSTGRES_ADMIN_* says otherwise. OPERATOR_PRINCIPAL_ID
# (with OPERATOR_PRINCIPAL_TYPE and OPERATOR_PRINCIPAL_NAME) overrides it; an empty id means no operator roles.
operator_principal() {
  if [[ -n ${OPERATOR_PRINCIPAL_ID:-} ]]; then
    printf '%s %s %s\n' "${OPERATOR_PRINCIPAL_TYPE:-User}" "$OPERATOR_PRINCIPAL_ID" "${OPERATOR_PRINCIPAL_NAME:-}"
    return
  fi
  local kind id="" name=""
  kind=$(az account show --query user.type -o tsv 2>/dev/null || true)
  if [[ $kind == servicePrincipal ]]; then
    name=$(az account show --query user.name -o tsv)
    id=$(az ad sp show --id "$name" --query id -o tsv 2>/dev/null || true)
    name=$(az ad sp show --id "$name" --query displayName -o tsv 2>/dev/null || true)
    printf 'ServicePrincipal %s %s\n' "$id" "$name"
  else
    id=$(az ad signed-in-user show --query id -o tsv 2>/dev/null || true)
    name=$(az ad signed-in-user show --query userPrincipalName -o tsv 2>/dev/null || true)
    printf 'User %s %s\n' "$id" "$name"
  fi
}

# Read one output of a finished deployment.
deployment_output() {
  az deployment group show -g "$1" -n "$2" --query "properties.outputs.$3.value" -o tsv
}

# An admin key (fl-admin-key, admin-key) must exist before the app resolves its Key Vault reference.
# Retries while the operator's new role assignment propagates (it can take a few minutes).
ensure_admin_key() {
  local vault=$1 name=${2:-fl-admin-key} attempt out
  for attempt in $(seq 1 20); do
    if out=$(az keyvault secret show --vault-name "$vault" --name "$name" --query id -o tsv 2>&1); then
      say "$name exists in $vault"
      return 0
    fi
    if [[ $out == *SecretNotFound* ]]; then
      az keyvault secret set --vault-name "$vault" --name "$name" --only-show-errors -o none \
        --value "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" &&
        { say "$name created in $vault (read it with: az keyvault secret show --vault-name $vault -n $name)"; return 0; }
    fi
    say "waiting for access to $vault (attempt $attempt/20): ${out##*$'\n'}"
    sleep 15
  done
  die "cannot read or create $name in $vault: does your account have 'Key Vault Secrets Officer' on it?"
}

# Production locks the audit container's WORM policy once deployed: locked, not even the subscription's owner
# can shorten or remove it (Bicep can only create it unlocked). Idempotent: a locked policy is left as it is.
audit_policy_state() {
  az storage container immutability-policy show -g "$1" --account-name "$2" -c "${3:-audit}" --query state -o tsv \
    2>/dev/null || true
}

lock_audit_policy() {
  local rg=$1 account=$2 container=${3:-audit} etag
  if [[ $(audit_policy_state "$rg" "$account" "$container") == Locked ]]; then
    say "the $container container's immutability policy is locked"
    return 0
  fi
  etag=$(az storage container immutability-policy show -g "$rg" --account-name "$account" -c "$container" \
    --query etag -o tsv)
  az storage container immutability-policy lock -g "$rg" --account-name "$account" -c "$container" \
    --if-match "$etag" -o none
  say "locked the $container container's immutability policy (it can now only be extended)"
}

# The generated secrets: the pipeline's in its vault, the customer pseudonym key in the vault both apps read.
ensure_secrets() {
  local vault=$1 shared_vault=$2 name
  for name in fl-admin-key admin-key audit-chain-key fl-server-signing-key; do
    ensure_admin_key "$vault" "$name"
  done
  ensure_admin_key "$shared_vault" customer-pseudonym-key
}

# The pipeline app's PostgreSQL role on MLflow's store (postgres-role.sh, which the caller sources): by the
# server's Entra administrator (the operator), never by the app. With vnetEnabled the server has no public
# endpoint: say what to run from inside the network instead.
ensure_mlflow_role() {
  local rg=$1 deployment=$2 host
  host=$(deployment_output "$rg" "$deployment" mlflowHost)
  [[ -n $host ]] || return 0  # a tracking server of your own (mlflowTrackingUri)
  local role oid
  role=$(deployment_output "$rg" "$deployment" pipelineIdentityName)
  oid=$(deployment_output "$rg" "$deployment" pipelineIdentityPrincipalId)
  if [[ $(deployment_output "$rg" "$deployment" vnetEnabled) == true ]]; then
    say "private networking: from a machine inside the VNet, run (as the PostgreSQL administrator):"
    say "  source infra/lib.sh; source infra/postgres-role.sh; grant_mlflow_role $host $role $oid"
    return 0
  fi
  grant_mlflow_role "$host" "$role" "$oid" mlflow "${POSTGRES_ADMIN_ROLE:-}"
}

# Building a package needs a Python with pip (any 3.11+: it downloads the platform's wheels by their hashes).
require_package_builder() {
  command -v python3 >/dev/null 2>&1 || die "python3 is needed to build the packages (scripts/build_package.py)"
  python3 -m pip --version >/dev/null 2>&1 || die "python3 has no pip: install it (python3 -m ensurepip, or your OS's python3-pip)"
}

# Build ROLE's package from the last commit into DIR/ROLE and zip it as DIR/ROLE.zip (what azd's hooks run too).
build_package() {
  python3 "$ROOT_DIR/scripts/build_package.py" "$1" --ref HEAD --out "$2/$1" --zip "$2/$1.zip" ||
    die "could not build the $1 package (see above)"
}

function_key() {
  az functionapp keys list -g "$1" -n "$2" --query functionKeys.default -o tsv
}

# The blob trigger's Event Grid webhook needs the host's blobs_extension key, which the host
# creates once it has started with the code. Waits up to 10 minutes.
wait_for_blobs_key() {
  local rg=$1 app=$2 attempt key
  for attempt in $(seq 1 40); do
    key=$(az functionapp keys list -g "$rg" -n "$app" --query systemKeys.blobs_extension -o tsv 2>/dev/null || true)
    [[ -n $key ]] && return 0
    say "waiting for the host's blobs_extension key (attempt $attempt/40)"
    sleep 15
  done
  die "the host never created its blobs_extension key: check the app's logs in Application Insights"
}

# GET /api/health. 200: serving a model. 503 with model_loaded false: up, no model published
# yet (a first deployment). Anything else after the retries: the deployment failed.
smoke_test() {
  local host=$1 key=$2 attempt code body
  body=$(mktemp)
  for attempt in $(seq 1 10); do
    code=$(curl -sS -o "$body" -w '%{http_code}' -H "x-functions-key: $key" "https://$host/api/health" || echo 000)
    if [[ $code == 200 ]]; then
      say "smoke test passed: $(cat "$body")"
      rm -f "$body"; return 0
    fi
    if [[ $code == 503 ]] && grep -q '"model_loaded": *false' "$body"; then
      say "smoke test passed: the app is up; no model is published yet ($(cat "$body"))."
      say "upload transactions to the raw/ container, then wait for retrain_model or run it from the portal"
      rm -f "$body"; return 0
    fi
    say "GET https://$host/api/health answered $code (attempt $attempt/10): $(head -c 300 "$body")"
    sleep 20
  done
  rm -f "$body"
  die "smoke test failed: /api/health never answered 200 or a model-less 503"
}

# The pipeline app has no model to serve: its OpenAPI document answering 200 says the host indexed it.
smoke_test_pipeline() {
  local host=$1 key=$2 attempt code
  for attempt in $(seq 1 10); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -H "x-functions-key: $key" "https://$host/api/openapi.json" ||
      echo 000)
    if [[ $code == 200 ]]; then
      say "smoke test passed: the pipeline app is up"
      return 0
    fi
    say "GET https://$host/api/openapi.json answered $code (attempt $attempt/10)"
    sleep 20
  done
  die "smoke test failed: the pipeline app's /api/openapi.json never answered 200"
}
