"""The Bicep templates parse, pass checkov with zero failures, and hang together."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from shared.adapters.storage import CONTAINERS
from tests.functions.host import host_functions
from tests.infra.conftest import BICEP_FILES, INFRA, infra_tool

MODULES = {
    "identity",
    "monitoring",
    "alerts",
    "workbook",
    "mlflow",
    "redis",
    "storage",
    "eventhubs",
    "keyvault",
    "eventgrid",
    "eventgrid-subscription",
    "roles",
    "functionapp",
    "network",  # private networking (vnetEnabled): wired into main.bicep with the two-app split
    "private-endpoint",
}


def _checkov(directory: Path) -> dict[str, Any]:
    proc = subprocess.run(
        [str(infra_tool("checkov")), "-d", str(directory), "--framework", "bicep", "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.stdout.strip(), f"checkov printed nothing (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    return report[0] if isinstance(report, list) else report


def test_every_module_exists_and_every_bicep_file_parses(bicep):
    assert {p.stem for p in BICEP_FILES} == MODULES | {"main"}
    broken = {path: info["error"] for path, info in bicep.items() if not info["ok"]}
    assert not broken, f"Bicep files that do not parse: {broken}"


def test_checkov_passes_with_zero_failed_checks_and_reasons_for_every_skip():
    report = _checkov(INFRA)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, report["results"].get("parsing_errors")
    # checkov silently skips files it cannot parse: insist it saw the resources of every module.
    seen = {
        Path(c["file_path"]).stem
        for kind in ("passed_checks", "failed_checks", "skipped_checks")
        for c in report["results"][kind]
    }
    assert {"storage", "functionapp", "keyvault", "eventhubs"} <= seen, seen
    assert summary["resource_count"] >= 30, summary
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, f"checkov failed checks: {failed}"
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 20 and reason != "No comment provided", f"{check['check_id']}: no reason given"


def test_checkov_fails_an_insecure_change(tmp_path):
    """The scan is not vacuous: TLS 1.0 and plain HTTP on the storage account are caught."""
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy, ignore=shutil.ignore_patterns("*.sh", "*.json"))
    storage = copy / "modules" / "storage.bicep"
    text = storage.read_text()
    text = text.replace("minimumTlsVersion: 'TLS1_2'", "minimumTlsVersion: 'TLS1_0'")
    text = text.replace("supportsHttpsTrafficOnly: true", "supportsHttpsTrafficOnly: false")
    storage.write_text(text)
    failed = {c["check_id"] for c in _checkov(copy)["results"]["failed_checks"]}
    assert {"CKV_AZURE_44", "CKV_AZURE_3"} <= failed, failed


def test_main_passes_each_module_exactly_the_parameters_it_declares(bicep):
    for name, module in bicep["main.bicep"]["modules"].items():
        declared = bicep[module["path"]]["parameters"]
        passed = set(module["params"])
        required = {p for p, info in declared.items() if not info["has_default"]}
        assert passed <= set(declared), f"module {name} is passed unknown parameters {passed - set(declared)}"
        assert required <= passed, f"module {name} misses required parameters {required - passed}"


def test_every_module_output_main_reads_exists():
    main = (INFRA / "main.bicep").read_text()
    paths = dict(re.findall(r"module (\w+) '([^']+)'", main))
    for symbol, output in set(re.findall(r"\b(\w+)\.outputs\.(\w+)", main)):
        module_text = (INFRA / paths[symbol]).read_text()
        assert re.search(rf"^output {output} ", module_text, re.M), f"{paths[symbol]} has no output {output}"


def test_parameter_files_set_only_declared_parameters_and_every_required_one(bicep):
    declared = bicep["main.bicep"]["parameters"]
    required = {p for p, info in declared.items() if not info["has_default"]}
    files = [*sorted((INFRA / "parameters").glob("*.json")), INFRA / "main.parameters.json"]
    assert {f.stem for f in files} >= {"dev", "prod", "main.parameters"}
    for file in files:
        values = json.loads(file.read_text())["parameters"]
        assert set(values) <= set(declared), f"{file.name}: unknown parameters {set(values) - set(declared)}"
        assert required <= set(values), f"{file.name}: misses {required - set(values)}"


def test_storage_containers_are_the_ones_the_app_uses(bicep):
    assert tuple(bicep["main.bicep"]["variables"]["dataContainers"]) == CONTAINERS
    modules = bicep["main.bicep"]["modules"]
    assert "dataContainers" in str(modules["storage"]["params"]["containerNames"])
    # each app's host account holds its code package only, never data
    assert str(modules["hostStorage"]["params"]["containerNames"]) == str(["deploymentContainerName"])


def test_event_grid_subscription_feeds_the_registered_blob_trigger(bicep):
    params = bicep["main.bicep"]["modules"]["eventSubscription"]["params"]
    trigger = next(
        b
        for b in json.loads(host_functions()[params["functionName"]].get_function_json())["bindings"]
        if b["type"] == "blobTrigger"
    )
    assert trigger["path"].split("/")[0] == params["sourceContainerName"]
    assert params["deadLetterContainerName"] in CONTAINERS


def test_every_shipped_federated_configuration_is_coherent_and_hides_or_resists_one_bank():
    """No shipped configuration lets one bank set the model, and the default keeps each bank's update from the
    server: the app's own default, main.bicep's and each parameters file's mode is secure (fedavg of clipped
    steps, the only aggregator a secure sum allows), or visible with median or a trimmed mean that trims at least
    one update at its quorum (the production default used to be trimmed_mean at beta 0.2 over 3 banks, which
    trims nothing). RoundConfig.check refuses, with the reason, any incoherent one."""
    from shared.domain.settings import Settings
    from shared.federated.rounds import RoundConfig

    main = (INFRA / "main.bicep").read_text()
    app = (INFRA / "modules" / "functionapp.bicep").read_text()
    default_mode = re.search(r"param federatedMode string = '(\w+)'", main)
    default_noise = re.search(r"param federatedNoiseMultiplier string = '([0-9.]*)'", main)
    assert default_noise is not None  # empty by default: at the default quorum of 3, noise ruins the model
    assert "FL_NOISE_MULTIPLIER: federatedMode == 'secure' ? federatedNoiseMultiplier : ''" in app
    default_aggregator = re.search(r"param federatedAggregator string = '(\w+)'", main)
    default_quorum = re.search(r"param federatedMinClients int = (\d+)", main)
    assert default_mode and default_aggregator and default_quorum
    assert "FL_AGGREGATOR: federatedMode == 'secure' ? 'fedavg' : federatedAggregator" in app
    beta = re.search(r"FL_TRIM_BETA: '([0-9.]+)'", app)
    fields = Settings.model_fields
    app_mode = fields["fl_mode"].default
    shipped = [("the app's defaults", app_mode, fields["fl_aggregator"].default, fields["fl_min_clients"].default)]
    shipped.append(("main.bicep defaults", default_mode[1], default_aggregator[1], int(default_quorum[1])))
    for file in sorted((INFRA / "parameters").glob("*.json")):
        values = json.loads(file.read_text())["parameters"]
        shipped.append(
            (
                file.name,
                values.get("federatedMode", {}).get("value", default_mode[1]),
                values.get("federatedAggregator", {}).get("value", default_aggregator[1]),
                values.get("federatedMinClients", {}).get("value", int(default_quorum[1])),
            )
        )
    assert app_mode == "secure" and default_mode[1] == "secure"
    for where, mode, aggregator, quorum in shipped:
        if mode == "secure":  # what the app and the Bicep set in secure mode, whatever the visible aggregator
            aggregator = "fedavg"
        aggregator = aggregator or "trimmed_mean"  # the app's default in visible mode
        noise = float(default_noise[1] or 1.0) if mode == "secure" else None  # the setting an operator may give
        config = RoundConfig(
            min_clients=quorum,
            aggregator=aggregator,
            mode=mode,
            trim_beta=float(beta[1]) if beta else None,
            noise_multiplier=noise,
        )
        config.check()  # raises with the reason for a configuration one bank could steer
        if mode == "visible":
            assert aggregator in ("median", "trimmed_mean"), f"{where} ships {aggregator}, which one bank can steer"
            if aggregator == "trimmed_mean":
                assert int(config.beta * quorum) >= 1, where
        else:
            assert config.adaptive_clip or config.clip_bound, where  # every bank's pull is bounded


def test_federated_nonces_expire_but_only_long_after_the_skew_window():
    """Issue 19, finding 17: nonces were kept for ever. A deleted nonce is safe once its request's timestamp
    would be refused by the clock-skew check on its own."""
    from shared.federated.auth import MAX_SKEW_SECONDS, NONCE_PREFIX

    text = (INFRA / "modules" / "storage.bicep").read_text()
    rule = text[text.index("name: 'federated-nonce-expiry'") :]
    rule = rule[: rule.index("\n        }\n")]
    assert f"prefixMatch: ['federated/{NONCE_PREFIX}']" in rule
    days = int(re.search(r"daysAfterModificationGreaterThan: (\d+)", rule)[1])  # type: ignore[index]
    assert days * 86_400 > 10 * MAX_SKEW_SECONDS


def test_models_keep_every_previous_version(bicep):
    """Issue 19, finding 12: a rewrite of a model, manifest or pointer can be seen and undone."""
    text = (INFRA / "modules" / "storage.bicep").read_text()
    assert "isVersioningEnabled: true" in text
    rule = text[text.index("name: 'previous-versions'") :]
    prefixes = re.search(r"prefixMatch: \[([^\]]*)\]", rule)[1]  # type: ignore[index]
    assert "models/" not in prefixes and "audit/" not in prefixes  # their versions are kept
    assert {p.strip(" '") for p in prefixes.split(",")} | {"models/", "audit/", "app-package/"} >= {
        f"{c}/" for c in CONTAINERS
    }


def test_retention_per_container_is_what_the_docs_say(bicep):
    """Issue 22: each container's retention is one lifecycle rule (or none: kept), its days a main.bicep
    parameter whose default is the documented figure (docs/governance/retention.md, moved from the README in
    issue 42); the audit container is WORM for as long as it is kept."""
    section = (INFRA.parent / "docs" / "governance" / "retention.md").read_text()
    rows = re.findall(r"^\| `([a-z-]+)/` \| (?:`(\w+)` \((\d+) days\)|kept) \|", section, re.MULTILINE)
    assert {r[0] for r in rows} == set(CONTAINERS), rows
    storage = (INFRA / "modules" / "storage.bicep").read_text()
    main = (INFRA / "main.bicep").read_text()
    rules = re.findall(r"prefixMatch: \[([^\]]*)\] \}\n\s+actions: \{\n\s+baseBlob: \{\n(.*?)\n\s+\}", storage, re.S)
    expiring = {}
    for prefixes, actions in rules:
        days = re.search(r"delete: \{ daysAfterModificationGreaterThan: (\w+)", actions)[1]  # type: ignore[index]
        for prefix in prefixes.split(","):
            expiring[prefix.strip(" '").rstrip("/")] = days
    for container, param, days in rows:
        if not param:
            assert container not in expiring, f"{container}/ is kept in the docs but expires in Bicep"
            continue
        assert expiring.get(container) == param, (container, expiring.get(container), param)
        assert re.search(rf"param {param} int = {days}\b", main), (param, days)
    assert "immutabilityPeriodSinceCreationInDays: auditRetentionDays" in storage
    assert "allowProtectedAppendWrites: true" in storage and "auditContainerName: 'audit'" in main


def test_the_window_erased_data_stays_recoverable_is_the_one_the_docs_name(bicep):
    """Issue 39, finding 4: an erased part or landed file stays recoverable from its previous versions, then its
    soft-deleted copy. The erasure guide (docs/governance/access-and-erasure.md, moved from the README in issue
    42) names that window (about 22 days); it is the Bicep's two retentions added up (and a day for the
    lifecycle's daily pass), so neither can change without the guide saying so."""
    storage = (INFRA / "modules" / "storage.bicep").read_text()
    rule = storage[storage.index("name: 'previous-versions'") :]
    versions = int(re.search(r"daysAfterCreationGreaterThan: (\d+)", rule)[1])  # type: ignore[index]
    main = (INFRA / "main.bicep").read_text()
    data = main[main.index("module storage 'modules/storage.bicep'") :]
    soft = int(re.search(r"softDeleteRetentionDays: (\d+)", data)[1])  # type: ignore[index]
    guide = (INFRA.parent / "docs" / "governance" / "access-and-erasure.md").read_text()
    stated = re.search(
        r"previous versions for (\d+) days \(the lifecycle rule `previous-versions`.*?"
        r"`softDeleteRetentionDays` \((\d+)\): about (\d+)",
        guide,
        re.S,
    )
    assert stated is not None, "the erasure guide no longer names the window"
    assert (int(stated[1]), int(stated[2])) == (versions, soft) and int(stated[3]) == versions + soft + 1
