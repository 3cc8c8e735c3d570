"""Least privilege per app (issue 19, finding 12; issue 41): each app's identity owns only its own host account.

It used to be Storage Blob Data Owner on the one account that held the host's state, every data
container and its own code package. Now the host has an account of its own, the app's identity holds
one role per data container on the data account, and only a deployment identity, which the app's code
never uses, can write the package.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import pytest

from shared.adapters.storage import CONTAINERS
from tests.functions.host import host_functions
from tests.infra.conftest import INFRA

ROLES = (INFRA / "modules" / "roles.bicep").read_text()
APP = (INFRA / "modules" / "functionapp.bicep").read_text()


@dataclass(frozen=True)
class Assignment:
    resource: str
    principal: str
    role: str
    scope: str


def _assignments() -> list[Assignment]:
    found = []
    blocks = re.split(r"^resource ", ROLES, flags=re.M)[1:]
    for block in blocks:
        if "'Microsoft.Authorization/roleAssignments@" not in block.split("\n", 1)[0]:
            continue
        principal = re.search(r"principalId: (\w+)", block)
        role = re.search(r"roleDefinitions', roles\.(\w+)\)", block)
        scope = re.search(r"scope: ([\w:\[\]]+)", block)
        assert principal and role and scope, f"unreadable role assignment: {block[:200]}"
        found.append(Assignment(block.split()[0], principal[1], role[1], scope[1]))
    return found


def _app_roles() -> list[Assignment]:
    return [a for a in _assignments() if a.principal == "appPrincipalId"]


SCORING, PIPELINE = "scoringPrincipalId", "pipelinePrincipalId"
WRITERS = {"storageBlobDataContributor", "storageBlobDataOwner"}


def _roles_of(principal: str) -> list[Assignment]:
    return [a for a in _assignments() if a.principal == principal]


def _main_params(bicep) -> dict:
    return bicep["main.bicep"]["modules"]["roles"]["params"]


def test_the_roles_are_read():
    assert len(_assignments()) >= 20
    assert any(a.role == "storageBlobDataContributor" and a.scope == "dataContainers[i]" for a in _roles_of(PIPELINE))


def test_the_scoring_app_writes_only_its_records(bicep):
    """It cannot move the champion pointer, rewrite models/ or curated/, or touch raw/, audit/ or federated/."""
    writes = {a.scope for a in _roles_of(SCORING) if a.role in WRITERS}
    assert writes == {"scoringHost", "recordContainers[i]"}, writes
    records = _main_params(bicep)["scoringRecordContainerNames"]
    assert sorted(records) == ["alerts", "deadletter", "predictions", "scored"]
    assert not {"models", "curated", "raw", "audit", "federated", "reports", "mlflow"} & set(records)


def test_the_scoring_app_reads_the_champion_and_uploaded_contracts_only(bicep):
    reads = {(a.scope, a.role) for a in _roles_of(SCORING) if a.role == "storageBlobDataReader"}
    assert reads == {
        ("dataStorage::blobService::models", "storageBlobDataReader"),
        ("dataStorage::blobService::contracts", "storageBlobDataReader"),
    }
    params = _main_params(bicep)
    assert (params["modelsContainerName"], params["contractsContainerName"]) == ("models", "curated")
    block = ROLES[ROLES.index("resource scoringContractsReader") :]
    block = block[: block.index("\n}\n")]
    assert "condition: contractsOnly" in block and "conditionVersion: '2.0'" in block
    condition = ROLES[ROLES.index("var contractsOnly") :].split("\n", 1)[0]
    assert condition.count("StringStartsWith \\'_contracts/\\'") == 2  # a read's path and a listing's prefix
    from shared.domain.layout import CONTRACTS_PREFIX

    assert CONTRACTS_PREFIX == "_contracts/"


def test_the_scoring_app_holds_nothing_on_the_pipelines_vault_the_anchor_or_the_data_account():
    scopes = {a.scope for a in _roles_of(SCORING)}
    assert not scopes & {"vault", "anchorStorage::blobService::anchors", "dataStorage", "dataContainers[i]"}, scopes
    assert {a.scope for a in _roles_of(SCORING) if a.role == "keyVaultSecretsUser"} == {"sharedVault"}
    hubs = {(a.scope, a.role) for a in _roles_of(SCORING) if a.role.startswith("eventHubs")}
    assert hubs == {("namespace::transactions", "eventHubsDataReceiver"), ("namespace::alerts", "eventHubsDataSender")}


def test_only_the_pipeline_can_write_models_and_it_holds_no_hub_role():
    writers_of_models = {a.principal for a in _assignments() if a.role in WRITERS and a.scope == "dataContainers[i]"}
    assert writers_of_models == {PIPELINE}
    assert not [a for a in _roles_of(PIPELINE) if a.role.startswith("eventHubs")]
    assert {a.scope for a in _roles_of(PIPELINE) if a.role == "keyVaultSecretsUser"} == {"vault", "sharedVault"}


def test_each_app_owns_blobs_only_in_its_own_host_account_and_the_triggers_container():
    assert {a.scope for a in _roles_of(SCORING) if a.role == "storageBlobDataOwner"} == {"scoringHost"}
    assert {a.scope for a in _roles_of(PIPELINE) if a.role == "storageBlobDataOwner"} == {
        "pipelineHost",
        "dataStorage::blobService::trigger",
    }
    on_account = {a.role for a in _roles_of(PIPELINE) if a.scope == "dataStorage"}
    assert on_account <= {"storageQueueDataContributor"}, on_account  # the blob trigger's poison queue


def test_each_deployment_identity_reaches_its_own_package_and_nothing_else():
    for who, host in (("scoringDeployPrincipalId", "scoringHost"), ("pipelineDeployPrincipalId", "pipelineHost")):
        assert [(a.scope, a.role) for a in _roles_of(who)] == [
            (f"{host}::blobService::deployment", "storageBlobDataContributor")
        ]
    packages = [a for a in _assignments() if a.scope.endswith("::blobService::deployment")]
    assert {a.principal for a in packages} == {"scoringDeployPrincipalId", "pipelineDeployPrincipalId"}
    # the platform uses the deployment identity for the package; the app's code uses the app's identity
    deployment = APP[APP.index("deployment: {") : APP.index("scaleAndConcurrency")]
    assert "userAssignedIdentityResourceId: deployIdentityId" in deployment
    assert "${packageBlobEndpoint}${deploymentContainerName}" in deployment
    assert "AZURE_CLIENT_ID: identityClientId" in APP and "DataStorage__clientId: identityClientId" in APP


def test_every_package_write_raises_an_alert():
    alerts = (INFRA / "modules" / "alerts.bicep").read_text()
    rule = alerts[alerts.index("name: 'code-package-written'") :]
    assert 'Uri has "/app-package/"' in rule[: rule.index("}")]
    main = (INFRA / "main.bicep").read_text()
    hosts = main[main.index("module hostStorage") : main.index("module storage ")]
    assert "logAnalyticsWorkspaceId: monitoring.outputs.workspaceId" in hosts  # the writes reach the workspace


def test_every_data_container_gets_the_pipelines_role_and_the_trigger_is_the_blob_triggers_container(bicep):
    params = _main_params(bicep)
    assert tuple(bicep["main.bicep"]["variables"]["dataContainers"]) == CONTAINERS
    assert params["dataContainerNames"] == "dataContainers"
    assert set(params["scoringRecordContainerNames"]) < set(CONTAINERS)
    trigger = next(
        b
        for b in json.loads(host_functions()["etl_raw_blob"].get_function_json())["bindings"]
        if b["type"] == "blobTrigger"
    )
    assert params["triggerContainerName"] == trigger["path"].split("/")[0]
    assert trigger["connection"] == "DataStorage"


def test_the_blob_extension_resolves_the_data_connection_bicep_sets(monkeypatch, bicep):
    """The Python blob binding accepts ``__accountName`` only for AzureWebJobsStorage; a second connection
    needs a service URI. Run the extension's own resolution on exactly the settings the Bicep sets."""
    from azurefunctions.extensions.bindings.blob import utils

    settings = set(bicep["modules/functionapp.bicep"]["variables"]["pipelineSettings"]) | set(
        bicep["modules/functionapp.bicep"]["variables"]["commonSettings"]
    )
    data = sorted(s for s in settings if s.startswith("DataStorage__"))
    assert {"DataStorage__blobServiceUri", "DataStorage__queueServiceUri"} <= set(data)  # the host's trigger wants both
    for name in [k for k in os.environ if k.startswith(("DataStorage", "AzureWebJobsStorage"))]:
        monkeypatch.delenv(name)
    for name in data:
        monkeypatch.setenv(name, "https://stdata.blob.core.windows.net/" if "Uri" in name else "placeholder")
    assert utils.get_connection_string("DataStorage") == "https://stdata.blob.core.windows.net/"
    assert utils.using_user_managed_identity("DataStorage")
    # what the previous shape (an account name) would have done with this connection
    monkeypatch.delenv("DataStorage__blobServiceUri")
    monkeypatch.setenv("DataStorage__accountName", "stdata")
    with pytest.raises(ValueError, match="DataStorage does not exist"):
        utils.get_connection_string("DataStorage")


def test_the_app_reads_its_data_from_the_data_account_not_the_hosts(monkeypatch):
    """Both accounts are set in Azure; the data's endpoint wins for every store the app builds."""
    from shared.adapters.storage import make_service_client
    from shared.domain.settings import Settings

    settings = Settings.model_validate(
        {
            "APP_ENV": "production",
            "AzureWebJobsStorage__accountName": "sthostaccount",
            "DataStorage__blobServiceUri": "https://stdataaccount.blob.core.windows.net/",
            "DataStorage__clientId": "00000000-0000-0000-0000-000000000001",
            "FL_ADMIN_KEY": "a-production-admin-key-of-our-own",
            "CUSTOMER_PSEUDONYM_KEY": "a-pseudonym-key-of-our-own",
            "AUDIT_CHAIN_KEY": "an-audit-chain-key-of-our-own",
        }
    )
    client = make_service_client(settings)
    assert client.account_name == "stdataaccount"
