"""The deployed alert rules and workbook agree with the monitoring run: the same bands, the same panels."""

from __future__ import annotations

import re

from shared.monitoring.alerts import BANDS
from shared.monitoring.report import PANELS
from tests.infra.conftest import INFRA

ALERTS = (INFRA / "modules" / "alerts.bicep").read_text()
WORKBOOK = (INFRA / "modules" / "workbook.bicep").read_text()


def _bicep_bands() -> dict[str, tuple[float, float]]:
    block = ALERTS[ALERTS.index("var bands = {") : ALERTS.index("}\n\nresource actionGroup")]
    number = r"(?:json\('([0-9.]+)'\)|([0-9.]+))"
    found = {}
    for name, w1, w2, c1, c2 in re.findall(rf"(\w+): {{ warning: {number}, critical: {number} }}", block):
        found[name] = (float(w1 or w2), float(c1 or c2))
    return found


def test_the_alert_rules_use_the_monitoring_runs_bands():
    bands = _bicep_bands()
    shared = {name: (b.warning, b.critical) for name, b in BANDS.items() if name in bands}
    assert shared and shared == {name: bands[name] for name in shared}
    assert set(bands) <= set(BANDS)  # every deployed band is one the monitoring run judges too


def test_every_rule_notifies_the_action_group_and_says_what_it_means(bicep):
    module = bicep["modules/alerts.bicep"]
    rules = module["variables"]["rules"]
    assert len(rules) >= 7 and all(r["description"] and r["query"] for r in rules)
    assert ALERTS.count("actions: { actionGroups: [actionGroup.id] }") == 2  # the loop and retrain-missing
    assert "alertEmail" in bicep["main.bicep"]["modules"]["alerts"]["params"]


def test_the_workbook_has_the_reports_panels_in_order():
    names = re.findall(r"^    name: '(\w+)'$", WORKBOOK, flags=re.M)
    assert tuple(names) == PANELS
