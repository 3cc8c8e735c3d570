#!/usr/bin/env bash
# The pipeline app's role on MLflow's PostgreSQL store (modules/mlflow.bicep), created by the server's Entra
# administrator, never by the app. Sourced after lib.sh (it uses die and say), not run:
#   source infra/lib.sh; source infra/postgres-role.sh
#   grant_mlflow_role HOST APP_ROLE APP_OBJECT_ID [DATABASE] [ADMIN_ROLE]
# HOST, DATABASE and the app's role name come from mlflow.bicep's outputs (host, databaseName) and the
# pipeline app's identity (its name and principal id). Needs psql and an `az login` as the administrator
# (mlflow.bicep's administratorPrincipal*, or a member of that Entra group). With vnetEnabled the server
# has no public endpoint: run it from inside the network (a runner or a jump host in the VNet).
#
# What the app gets, and why it is enough for MLflow: its Entra role (not an administrator, not a member of
# azure_pg_admin, no CREATEDB or CREATEROLE), CONNECT on the mlflow database (taken from PUBLIC: only it and
# the administrators may connect), and USAGE and CREATE on that database's public schema: MLflow's migrations
# create its tables there on first use, owned by the app, which can then alter them in later migrations. It
# owns no database, so it cannot drop one or change a setting, and elsewhere it has only what PUBLIC has.
# Tried against a local PostgreSQL 15 with a stand-in for pgaadauth_create_principal_with_oid, the database
# owned by azure_pg_admin and the administrator a member of it; not yet against Azure, where the owner of a
# database made by Azure's API is to be checked (\l): the REVOKE and GRANTs need the administrator to own it.

# An Entra ID access token for Azure Database for PostgreSQL, for whoever az is logged in as.
postgres_token() {
  az account get-access-token --resource-type oss-rdbms --query accessToken -o tsv
}

# Run the SQL on standard input against DATABASE on HOST as ROLE, the token being the password. Further
# arguments go to psql (-v name=value sets the :'name' and :"name" of the SQL). Stops at the first error.
postgres_sql() {
  local host=$1 database=$2 role=$3 token
  shift 3
  command -v psql >/dev/null 2>&1 || die "psql is needed (apt-get install postgresql-client)"
  token=$(postgres_token) ||
    die "no Entra ID token for PostgreSQL: run 'az login' as the server's administrator"
  PGHOST=$host PGPORT=5432 PGDATABASE=$database PGUSER=$role PGSSLMODE=require PGPASSWORD=$token \
    psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 "$@"
}

# The PostgreSQL role of the signed-in administrator: a user's UPN. A group or service principal signs in
# under the group's or the principal's display name: pass it as ADMIN_ROLE instead.
postgres_admin_role() {
  az account show --query user.name -o tsv
}

# Create the app's role if it is missing and give it the mlflow database only. Idempotent.
grant_mlflow_role() {
  local host=$1 app_role=$2 app_oid=$3 database=${4:-mlflow} admin=${5:-} is_admin
  [[ -n $host && -n $app_role && -n $app_oid ]] ||
    die "usage: grant_mlflow_role HOST APP_ROLE APP_OBJECT_ID [DATABASE] [ADMIN_ROLE]"
  [[ -n $admin ]] || admin=$(postgres_admin_role)
  say "PostgreSQL $host: role $app_role for the $database database (as $admin)"

  # Entra principals are created from the postgres database. objectType 'service': a managed identity,
  # named by its object id (display names of service principals are not unique); isAdmin false.
  postgres_sql "$host" postgres "$admin" -v app_role="$app_role" -v app_oid="$app_oid" <<'SQL'
SELECT NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role') AS missing \gset
\if :missing
SELECT * FROM pgaadauth_create_principal_with_oid(:'app_role', :'app_oid', 'service', false, false);
\endif
SQL

  # Before issue 41 the app's identity was the server's Entra administrator, so a member of azure_pg_admin:
  # granting it less would change nothing. Refuse, and say how to undo it.
  is_admin=$(postgres_sql "$host" postgres "$admin" --tuples-only --no-align -v app_role="$app_role" <<'SQL'
SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_role' AND pg_has_role(oid, 'azure_pg_admin', 'MEMBER'));
SQL
  )
  [[ $is_admin == f ]] ||
    die "$app_role is still an administrator of $host (azure_pg_admin): remove it first with" \
      "az postgres flexible-server microsoft-entra-admin delete -g <rg> -s <server> -i $app_oid" \
      "(infra/README.md: \"The MLflow store's roles\")"

  postgres_sql "$host" "$database" "$admin" -v app_role="$app_role" -v database="$database" <<'SQL'
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO :"app_role";
GRANT USAGE, CREATE ON SCHEMA public TO :"app_role";
SQL
  say "$app_role may connect to $database and create its tables there, nothing more"
}
