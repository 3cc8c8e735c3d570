"""Least privilege in storage (issue 19, finding 12): the app's identity owns only the host's own account.

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


def test_the_roles_are_read():
    assert len(_assignments()) >= 10
    assert any(a.role == "storageBlobDataContributor" and a.scope == "dataContainers[i]" for a in _app_roles())


def test_the_app_owns_blobs_only_in_the_hosts_account_and_the_triggers_container():
    owners = {a.scope for a in _app_roles() if a.role == "storageBlobDataOwner"}
    assert owners == {"hostStorage", "dataStorage::blobService::trigger"}


def test_the_app_holds_no_blob_role_on_the_data_account_itself():
    on_account = {a.role for a in _app_roles() if a.scope == "dataStorage"}
    assert on_account <= {"storageQueueDataContributor"}, on_account  # the blob trigger's poison queue


def test_only_the_deployment_identity_can_touch_the_code_package():
    package = [a for a in _assignments() if a.scope == "dataStorage::blobService::deployment"]
    assert [(a.principal, a.role) for a in package] == [("deployPrincipalId", "storageBlobDataContributor")]
    # the platform uses the deployment identity for the package; the app's code uses the app's identity
    deployment = APP[APP.index("deployment: {") : APP.index("scaleAndConcurrency")]
    assert "userAssignedIdentityResourceId: deployIdentityId" in deployment
    assert "AZURE_CLIENT_ID: identityClientId" in APP and "DataStorage__clientId: identityClientId" in APP


def test_every_data_container_gets_the_apps_role_and_the_trigger_is_the_blob_triggers_container(bicep):
    params = bicep["main.bicep"]["modules"]["roles"]["params"]
    assert tuple(bicep["main.bicep"]["variables"]["dataContainers"]) == CONTAINERS
    assert params["dataContainerNames"] == "dataContainers"
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

    settings = set(bicep["modules/functionapp.bicep"]["variables"]["appSettings"])
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
