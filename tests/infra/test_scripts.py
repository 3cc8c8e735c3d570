"""deploy.sh / destroy.sh: syntax, shellcheck, and their behaviour against a stand-in Azure CLI.

The real `az` cannot reach Azure from here, so a small fake on PATH records each call and
answers like the CLI does; the scripts themselves run for real (bash, git archive, python3).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.infra.conftest import INFRA, infra_tool

SCRIPTS = sorted(INFRA.glob("*.sh"))
BASH = shutil.which("bash") or "/bin/bash"

FAKE_AZ = r"""#!/usr/bin/env bash
printf '%s\n' "$*" >> "$AZ_LOG"
case "$*" in
  "account show --only-show-errors")
    [[ -n ${AZ_LOGGED_OUT:-} ]] && { echo "ERROR: Please run 'az login' to setup account." >&2; exit 1; }
    echo '{}' ;;
  "account show --query user.type -o tsv") echo user ;;
  "ad signed-in-user show --query id -o tsv") echo 11111111-2222-3333-4444-555555555555 ;;
  "group exists -n "*) echo "${AZ_GROUP_EXISTS:-true}" ;;
  "deployment group show "*scoringAppName*) echo func-scoring-fraudops-dev-abc ;;
  "deployment group show "*scoringAppHostName*) echo func-scoring-fraudops-dev-abc.azurewebsites.net ;;
  "deployment group show "*pipelineAppName*) echo func-pipeline-fraudops-dev-abc ;;
  "deployment group show "*pipelineAppHostName*) echo func-pipeline-fraudops-dev-abc.azurewebsites.net ;;
  "deployment group show "*sharedKeyVaultName*) echo kvsfraudopsdevabc ;;
  "deployment group show "*mlflowHost*) echo "${AZ_MLFLOW_HOST:-}" ;;
  "deployment group show "*pipelineIdentityName*) echo id-fraudops-dev-abc-pipeline ;;
  "deployment group show "*pipelineIdentityPrincipalId*) echo 99999999-8888-7777-6666-555555555555 ;;
  "deployment group show "*vnetEnabled*) echo "${AZ_VNET:-false}" ;;
  "account get-access-token "*) echo entra-token ;;
  "account show --query user.name -o tsv") echo operator@bank.example ;;
  "ad signed-in-user show --query userPrincipalName -o tsv") echo operator@bank.example ;;
  "deployment group show "*keyVaultName*) echo kvfraudopsdevabc ;;
  "keyvault secret show "*) echo "(SecretNotFound) A secret with (name/id) fl-admin-key was not found" >&2; exit 1 ;;
  "functionapp keys list "*functionKeys.default*) echo function-key ;;
  "functionapp keys list "*blobs_extension*) echo blobs-key ;;
  "functionapp deployment source config-zip "*)
    name="" src=""
    while (($#)); do case $1 in -n) name=$2 ;; --src) src=$2 ;; esac; shift; done
    mkdir -p "$AZ_ZIP_COPY" && cp "$src" "$AZ_ZIP_COPY/$name.zip" ;;
  "resource list "*) printf 'Microsoft.Storage/storageAccounts\tstfraudopsdevabc\n' ;;
esac
"""

FAKE_CURL = r"""#!/usr/bin/env bash
printf 'curl %s\n' "$*" >> "$AZ_LOG"
args="$*" out=/dev/stdout write=""
while (($#)); do
  case $1 in -o) out=$2; shift ;; -w) write=$2; shift ;; esac
  shift
done
printf '{"status": "unavailable", "model_loaded": false, "reason": "no model published yet"}' > "$out"
[[ $args == *openapi.json* && -n $write ]] && { printf '200'; exit 0; }
[[ -n $write ]] && printf '503'
exit 0
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def fake_cli(tmp_path) -> dict[str, str]:
    """Environment with the fake az and curl first on PATH; calls are logged to AZ_LOG."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "az", FAKE_AZ)
    _executable(bin_dir / "curl", FAKE_CURL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "OPERATOR_"))}
    env.update(
        PATH=f"{bin_dir}:/usr/bin:/bin",
        AZ_LOG=str(tmp_path / "az.log"),
        AZ_ZIP_COPY=str(tmp_path / "published"),
        # the packages' source and manifests are what these tests read; tests/deployables/ builds complete ones
        FRAUDOPS_PACKAGE_SKIP_INSTALL="1",
    )
    return env


def _run(script: str, *args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(INFRA / script), *args], env=env, capture_output=True, text=True, input=stdin, timeout=120
    )


def _calls(env: dict[str, str]) -> list[str]:
    log = Path(env["AZ_LOG"])
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_pass_shellcheck(script):
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    check = subprocess.run([str(infra_tool("shellcheck")), "-x", str(script)], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout


def test_shellcheck_catches_a_real_mistake(tmp_path):
    bad = tmp_path / "bad.sh"
    bad.write_text("#!/usr/bin/env bash\nfiles=$(ls)\nrm $files\n")
    assert subprocess.run([str(infra_tool("shellcheck")), str(bad)], capture_output=True).returncode != 0


def test_deploy_without_an_environment_prints_usage(fake_cli):
    result = _run("deploy.sh", env=fake_cli)
    assert result.returncode == 2 and "usage: infra/deploy.sh ENV" in result.stderr


def test_deploy_names_the_known_environments_when_given_an_unknown_one(fake_cli):
    result = _run("deploy.sh", "staging", env=fake_cli)
    assert result.returncode == 1
    assert "unknown environment 'staging'" in result.stderr and "dev prod" in result.stderr
    assert _calls(fake_cli) == []


def test_deploy_explains_a_missing_azure_cli(tmp_path, fake_cli):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "dirname").symlink_to(Path("/usr/bin/dirname"))
    result = _run("deploy.sh", "dev", env={**fake_cli, "PATH": str(bare)})
    assert result.returncode == 1 and "Azure CLI (az) is not installed" in result.stderr


def test_deploy_explains_a_cli_that_is_not_logged_in(fake_cli):
    result = _run("deploy.sh", "dev", env={**fake_cli, "AZ_LOGGED_OUT": "1"})
    assert result.returncode == 1 and "not logged in: run 'az login'" in result.stderr
    assert not any("deployment" in call for call in _calls(fake_cli))


def test_what_if_changes_nothing(fake_cli):
    result = _run("deploy.sh", "prod", "--what-if", env=fake_cli)
    assert result.returncode == 0, result.stderr
    calls = _calls(fake_cli)
    what_if = [c for c in calls if c.startswith("deployment group what-if")]
    assert len(what_if) == 1 and "-g rg-fraudops-prod" in what_if[0] and "parameters/prod.json" in what_if[0]
    assert "operatorPrincipalId=11111111-2222-3333-4444-555555555555" in what_if[0]
    mutating = ("deployment group create", "group create", "config-zip", "keyvault secret set")
    assert not [c for c in calls if c.startswith(mutating)], calls


def _package(zip_path: Path) -> tuple[set[str], dict]:
    import json

    with zipfile.ZipFile(zip_path) as archive:
        return set(archive.namelist()), json.loads(archive.read("fraudops-package.json"))


def test_deploy_runs_infra_then_both_packages_then_event_grid_then_smoke_tests(fake_cli):
    result = _run("deploy.sh", "dev", env={**fake_cli, "AZ_GROUP_EXISTS": "false"})
    assert result.returncode == 0, result.stderr
    calls = _calls(fake_cli)

    def first(prefix: str) -> int:
        return next(i for i, c in enumerate(calls) if c.startswith(prefix))

    creates = [i for i, c in enumerate(calls) if c.startswith("deployment group create")]
    assert len(creates) == 2
    assert "deployEventSubscription=false" in calls[creates[0]]
    assert "deployEventSubscription=true" in calls[creates[1]]
    zips = [c for c in calls if c.startswith("functionapp deployment source config-zip")]
    assert [c.split(" -n ")[1].split()[0] for c in zips] == [
        "func-scoring-fraudops-dev-abc",
        "func-pipeline-fraudops-dev-abc",
    ]
    assert all("--build-remote false" in c for c in zips)  # the packages hold their locked dependencies
    assert (
        first("group create -n rg-fraudops-dev")
        < creates[0]
        < first("keyvault secret set")
        < first("functionapp deployment source config-zip")
        < first("functionapp keys list -g rg-fraudops-dev -n func-pipeline-fraudops-dev-abc --query systemKeys")
        < creates[1]
        < max(i for i, c in enumerate(calls) if c.startswith("curl"))
    )
    secrets = [c for c in calls if c.startswith("keyvault secret set")]
    assert [c for c in secrets if "customer-pseudonym-key" in c] and all(
        "--vault-name kvsfraudopsdevabc" in c for c in secrets if "customer-pseudonym-key" in c
    )  # the one secret the scoring app reads lives in the shared vault; the rest in the pipeline's
    assert all("--vault-name kvfraudopsdevabc" in c for c in secrets if "customer-pseudonym-key" not in c)
    assert "x-functions-key: function-key" in calls[-1] and "func-scoring" in calls[-1] and "/api/health" in calls[-1]
    assert "no model is published yet" in result.stderr and "the pipeline app is up" in result.stderr

    scoring, scoring_manifest = _package(Path(fake_cli["AZ_ZIP_COPY"]) / "func-scoring-fraudops-dev-abc.zip")
    pipeline, pipeline_manifest = _package(Path(fake_cli["AZ_ZIP_COPY"]) / "func-pipeline-fraudops-dev-abc.zip")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert scoring_manifest["commit"] == pipeline_manifest["commit"] == head  # the last commit, not the work tree
    assert (scoring_manifest["app"], pipeline_manifest["app"]) == ("scoring", "pipeline")
    common = {"function_app.py", "host.json", "requirements.lock", "shared/domain/settings.py", "api/app.py"}
    assert (
        common | {"functions/stream.py"} <= scoring
        and common | {"training/retrain.py", "fraudops_bank/wire.py"} <= pipeline
    )
    assert not [n for n in scoring if n.startswith("training/")]
    for names in (scoring, pipeline):
        assert not [n for n in names if n.startswith(("cli/", "tests/", "infra/", ".venv", "deploy/"))]


FAKE_PSQL = r"""#!/usr/bin/env bash
{ printf 'psql %s host=%s db=%s user=%s password=%s\n' "$*" "$PGHOST" "$PGDATABASE" "$PGUSER" "$PGPASSWORD"
  cat; } >> "$AZ_LOG"
case $* in *"-tA"*|*"--tuples-only"*) echo f ;; esac
"""


def test_deploy_gives_the_pipeline_its_postgres_role_as_the_operator_never_as_the_app(fake_cli):
    _executable(Path(fake_cli["PATH"].split(":")[0]) / "psql", FAKE_PSQL)
    result = _run(
        "deploy.sh", "dev", env={**fake_cli, "AZ_MLFLOW_HOST": "psql-fraudops-dev-abc.postgres.database.azure.com"}
    )
    assert result.returncode == 0, result.stderr
    log = Path(fake_cli["AZ_LOG"]).read_text()
    assert "host=psql-fraudops-dev-abc.postgres.database.azure.com" in log
    assert "user=operator@bank.example password=entra-token" in log  # the administrator's own Entra token
    assert "pgaadauth_create_principal_with_oid" in log and "app_oid=99999999-8888-7777-6666-555555555555" in log
    creates = [c for c in _calls(fake_cli) if c.startswith("deployment group create")]
    assert "operatorPrincipalName=operator@bank.example" in creates[0]  # the server's administrator


def test_deploy_with_private_networking_says_where_to_run_the_role_script(fake_cli):
    _executable(Path(fake_cli["PATH"].split(":")[0]) / "psql", FAKE_PSQL)
    env = {**fake_cli, "AZ_MLFLOW_HOST": "psql-x.postgres.database.azure.com", "AZ_VNET": "true"}
    result = _run("deploy.sh", "dev", env=env)
    assert result.returncode == 0, result.stderr
    assert "from a machine inside the VNet" in result.stderr and "grant_mlflow_role psql-x" in result.stderr
    assert "psql " not in Path(fake_cli["AZ_LOG"]).read_text()


def test_destroy_refuses_without_a_terminal_or_yes(fake_cli):
    result = _run("destroy.sh", "dev", env=fake_cli, stdin="rg-fraudops-dev\n")
    assert result.returncode == 1 and "pass --yes" in result.stderr
    assert not [c for c in _calls(fake_cli) if c.startswith("group delete")]


def test_destroy_with_yes_deletes_the_environments_group(fake_cli):
    result = _run("destroy.sh", "dev", "--yes", env=fake_cli)
    assert result.returncode == 0, result.stderr
    assert "group delete -n rg-fraudops-dev --yes" in _calls(fake_cli)
    assert "az keyvault recover" in result.stderr


FAKE_AZD = r"""#!/usr/bin/env bash
printf 'azd %s\n' "$*" >> "$AZ_LOG"
"""


def test_azd_postdeploy_adds_the_event_subscription_with_a_second_provision(fake_cli, tmp_path):
    _executable(Path(fake_cli["PATH"].split(":")[0]) / "azd", FAKE_AZD)
    env = {
        **fake_cli,
        "AZURE_RESOURCE_GROUP": "rg-fraudops-dev",
        "SCORINGAPPNAME": "func-scoring-fraudops-dev-abc",
        "SCORINGAPPHOSTNAME": "func-scoring-fraudops-dev-abc.azurewebsites.net",
        "PIPELINEAPPNAME": "func-pipeline-fraudops-dev-abc",
        "PIPELINEAPPHOSTNAME": "func-pipeline-fraudops-dev-abc.azurewebsites.net",
        "KEYVAULTNAME": "kvfraudopsdevabc",
        "SHAREDKEYVAULTNAME": "kvsfraudopsdevabc",
    }
    result = _run("azd-postdeploy.sh", env=env)
    assert result.returncode == 0, result.stderr
    calls = _calls(fake_cli)
    order = [
        next(i for i, c in enumerate(calls) if c.startswith(prefix))
        for prefix in (
            "keyvault secret set",
            "functionapp keys list -g rg-fraudops-dev -n func-pipeline-fraudops-dev-abc --query systemKeys",
            "azd env set DEPLOY_EVENT_SUBSCRIPTION true",
            "azd provision --no-prompt",
        )
    ]
    assert order == sorted(order)
    assert calls[-1].startswith("curl") and "func-scoring" in calls[-1] and "/api/health" in calls[-1]

    again = _run("azd-postdeploy.sh", env={**env, "DEPLOY_EVENT_SUBSCRIPTION": "true"})
    assert again.returncode == 0 and _calls(fake_cli).count("azd provision --no-prompt") == 1  # not twice


def test_azure_yaml_points_azd_at_the_bicep_and_the_hook():
    import yaml

    config = yaml.safe_load((ROOT / "azure.yaml").read_text())
    infra = ROOT / config["infra"]["path"]
    assert config["infra"]["provider"] == "bicep" and (infra / f"{config['infra']['module']}.bicep").exists()
    assert (infra / "main.parameters.json").exists()
    hook = config["hooks"]["postdeploy"]["run"].split()[-1]
    assert (ROOT / hook).exists()


@pytest.mark.parametrize("app", ["scoring", "pipeline"])
def test_azd_builds_each_package_as_deploy_sh_does_and_deploys_it_as_built(app):
    """azd runs the same builder on the same commit (prepackage), then deploys the folder it wrote, unbuilt."""
    import yaml

    service = yaml.safe_load((ROOT / "azure.yaml").read_text())["services"][app]
    project = ROOT / service["project"]
    assert project == ROOT / "deploy" / app and (project / "function_app.py").exists()
    assert service["host"] == "function" and service["remoteBuild"] is False
    hook = service["hooks"]["prepackage"]["run"].split()
    assert hook[:3] == ["python3", "../../scripts/build_package.py", app]
    out = hook[hook.index("--out") + 1]
    assert (project / out).resolve() == (project / service["dist"]).resolve() == ROOT / "dist" / app
    assert hook[hook.index("--ref") + 1] == "HEAD"  # the last commit, as deploy.sh (lib.sh build_package)
    assert "--ref HEAD" in (INFRA / "lib.sh").read_text()
