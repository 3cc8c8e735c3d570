#!/usr/bin/env bash
# Delete an environment's resource group, after the operator types its name.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<'USAGE'
usage: infra/destroy.sh ENV [--yes]

  ENV    the environment to delete (its resource group: rg-fraudops-ENV or $AZURE_RESOURCE_GROUP)
  --yes  do not ask (for pipelines); without it you must type the resource group's name
USAGE
}

parse_env_and_flag --yes "$@"
assume_yes=$flag_set

params_file "$env_name" >/dev/null
require_az
rg=$(resource_group "$env_name")
if [[ $(az group exists -n "$rg") != true ]]; then
  say "resource group $rg does not exist: nothing to delete"
  exit 0
fi

az resource list -g "$rg" --query '[].[type, name]' -o tsv >&2
if ((!assume_yes)); then
  [[ -t 0 ]] || die "refusing to delete $rg without a terminal to confirm on; pass --yes to skip the prompt"
  read -r -p "This deletes every resource above, and the data in storage. Type '$rg' to confirm: " answer
  [[ $answer == "$rg" ]] || die "confirmation did not match; nothing deleted"
fi

say "deleting $rg (several minutes)"
az group delete -n "$rg" --yes
say "deleted $rg. Its Key Vault stays soft-deleted (purge protection) for its retention period:"
say "a new deployment of '$env_name' into a resource group of the same name recovers it with"
say "  az keyvault recover --name <vault>   (az keyvault list-deleted lists it)"
