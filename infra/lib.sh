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

# Type and object id ("User <id>") of whoever runs the script (granted bank-key management and raw/ upload).
# OPERATOR_PRINCIPAL_ID overrides it; an empty result means no operator roles.
operator_principal() {
  if [[ -n ${OPERATOR_PRINCIPAL_ID:-} ]]; then
    printf '%s %s\n' "${OPERATOR_PRINCIPAL_TYPE:-User}" "$OPERATOR_PRINCIPAL_ID"
    return
  fi
  local kind id=""
  kind=$(az account show --query user.type -o tsv 2>/dev/null || true)
  if [[ $kind == servicePrincipal ]]; then
    id=$(az ad sp show --id "$(az account show --query user.name -o tsv)" --query id -o tsv 2>/dev/null || true)
    printf 'ServicePrincipal %s\n' "$id"
  else
    id=$(az ad signed-in-user show --query id -o tsv 2>/dev/null || true)
    printf 'User %s\n' "$id"
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
