"""The model registry for people, against Azurite: list, show, promote, rollback, deprecate, each through
the verified, ETag-conditional pointer path and each a line of the audit chain; and the chain's own
check catching a tampered line through ``fraudops audit verify``."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from cli.devtools.models import publish_synthetic_model
from cli.main import main
from shared.adapters.audit import CONTAINER, AuditLog
from shared.adapters.model_store import ModelStore
from shared.domain.errors import ModelDeprecatedError, ModelIntegrityError, RegistryError
from shared.governance.registry import Registry
from shared.scoring.scorer import Scorer

VERSIONS = ("20261101T000000Z-aaaaaaaa", "20261102T000000Z-bbbbbbbb", "20261103T000000Z-cccccccc")


@pytest.fixture
def registry(store, settings) -> Registry:
    for i, version in enumerate(VERSIONS):
        publish_synthetic_model(store, settings.model_name, version=version, trees=3, rows=3000, seed=i, promote=False)
        time.sleep(0.01)  # created_at strictly increases
    r = Registry(ModelStore(store, settings.model_name), AuditLog(store))
    for version in VERSIONS:
        r.promote(version, actor="ops@bank", reason=f"release {version[:8]}")
    return r


def test_promotions_are_listed_with_who_and_why_and_audited(registry):
    rows = registry.versions()
    assert [r["version"] for r in rows] == list(reversed(VERSIONS))
    assert [r["champion"] for r in rows] == [True, False, False] and all(r["times_promoted"] == 1 for r in rows)
    shown = registry.show(VERSIONS[1])
    assert [(h["act"], h["version"], h["previous"]) for h in shown["history"]] == [
        ("promotion", VERSIONS[1], VERSIONS[0]),
        ("promotion", VERSIONS[2], VERSIONS[1]),
    ]
    assert shown["history"][0]["actor"] == "ops@bank" and shown["history"][0]["reason"] == "release 20261102"
    with pytest.raises(RegistryError, match="already the champion"):
        registry.promote(VERSIONS[2], actor="ops@bank", reason="again")
    assert registry.audit.verify().intact


def test_rollback_goes_back_to_the_previous_champion_and_only_backwards(registry, settings):
    scorer = Scorer(registry.models, feature_names=_features(), refresh_seconds=0, threads=1)
    assert scorer.current().version == VERSIONS[2]
    line = registry.rollback(to=None, actor="ops@bank", reason="false alarms doubled")
    assert line.act == "rollback" and line.details == {
        "model": settings.model_name,
        "version": VERSIONS[1],
        "previous": VERSIONS[2],
        "manifest_sha256": line.details["manifest_sha256"],
    }
    assert registry.models.pointer().version == VERSIONS[1] and scorer.current().version == VERSIONS[1]
    with pytest.raises(RegistryError, match="not earlier than the champion"):
        registry.rollback(to=VERSIONS[2], actor="ops@bank", reason="forward is not back")
    # a version whose bytes were rewritten since publishing is refused, and the pointer stays
    registry.models.store.put_bytes("models", f"{settings.model_name}/{VERSIONS[0]}/model.onnx", b"not a model")
    with pytest.raises(ModelIntegrityError, match="does not match the sha256"):
        registry.rollback(to=VERSIONS[0], actor="ops@bank", reason="older")
    assert registry.models.pointer().version == VERSIONS[1]


def test_a_deprecated_version_cannot_be_promoted_rolled_back_to_or_pinned(registry):
    with pytest.raises(RegistryError, match="is the champion"):
        registry.deprecate(VERSIONS[2], actor="ops@bank", reason="leaks")
    scorer = Scorer(registry.models, feature_names=_features(), refresh_seconds=0, threads=1)
    x = np.zeros((1, 29), dtype=np.float32)
    assert scorer.pinned(VERSIONS[0]).predict_proba(x).shape == (1,)  # pinned before its deprecation
    record = registry.deprecate(VERSIONS[0], actor="risk@bank", reason="trained on a leaky feature")
    assert record.actor == "risk@bank"
    assert registry.deprecate(VERSIONS[0], actor="someone", reason="again") == record  # once, not twice
    with pytest.raises(ModelDeprecatedError, match="deprecated by risk@bank"):
        registry.promote(VERSIONS[0], actor="ops@bank", reason="try")
    with pytest.raises(ModelDeprecatedError, match="deprecated"):
        registry.rollback(to=VERSIONS[0], actor="ops@bank", reason="try")
    with pytest.raises(ModelDeprecatedError, match="cannot be pinned"):
        scorer.pinned(VERSIONS[0])  # the cached session is not served either
    acts = [e.act for e in registry.audit.entries()]
    assert acts == ["promotion"] * 3 + ["deprecation"]
    assert [r["deprecated"] for r in registry.versions()] == [False, False, True]


def test_the_cli_rolls_back_and_verify_names_a_tampered_line(registry, store, capsys):
    assert main(["models", "rollback", "--reason", "incident 42"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["champion"] == VERSIONS[1] and summary["previous"] == VERSIONS[2] and summary["act"] == "rollback"
    assert main(["models", "list"]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert listed["champion"] == VERSIONS[1] and len(listed["versions"]) == 3
    assert main(["audit", "verify"]) == 0
    verified = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert verified["intact"] and verified["lines"] == 4 and verified["head_seq"] == 3
    # tamper: the rollback's reason rewritten in place (Azurite allows it; the WORM policy does not)
    [part] = store.list_names(CONTAINER, "chain/")
    content = store.get_bytes(CONTAINER, part)[0]
    store.put_bytes(CONTAINER, part, content.replace(b"incident 42", b"routine work"))
    assert main(["audit", "verify"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out.strip().splitlines()[-1])["broken"]["line"] == 4
    assert f"broken at {part} line 4 (seq 3)" in err and "changed after it was written" in err
    assert main(["models", "deprecate", VERSIONS[1], "--reason", "x"]) == 1  # the champion
    assert "promote or roll back to another version before deprecating it" in capsys.readouterr().err


def _features() -> list[str]:
    return [f"V{i}" for i in range(1, 29)] + ["Amount"]


def test_an_empty_append_blob_left_by_a_crash_takes_the_next_act_in_azurite(store):
    """Issue 39, finding 7, against the real storage API: a writer that created the month's append blob and
    crashed before its first block left it empty, and every act after failed for the month."""
    from datetime import UTC, datetime

    from shared.domain.audit import Act

    at = datetime(2030, 1, 15, tzinfo=UTC)  # a month of its own
    log = AuditLog(store, clock=lambda: at)
    store._service.get_blob_client(CONTAINER, "chain/2030-01.jsonl").create_append_blob()
    first = log.record(Act("promotion", "ops@bank", "after the crash", {"version": VERSIONS[0]}))
    second = log.record(Act("promotion", "ops@bank", "and the next", {"version": VERSIONS[1]}))
    assert (first.seq + 1, first.hash) == (second.seq, second.prev)
    assert [e.reason for e in log.entries("2030-01")] == ["after the crash", "and the next"]


def test_azurite_reports_the_block_count_a_part_is_sealed_by(store):
    """Issue 39, finding 7, against the real storage API: the block count the writer seals a part by is the append
    blob's committed block count, as Azure (and Azurite) report it; a part is sealed before the cap."""
    from datetime import UTC, datetime

    from shared.domain.audit import Act

    at = datetime(2031, 2, 15, tzinfo=UTC)
    log = AuditLog(store, clock=lambda: at, max_blocks=3)
    for i in range(4):
        log.record(Act("promotion", "ops@bank", f"act {i}", {"version": VERSIONS[0]}))
    assert store.info(CONTAINER, "chain/2031-02.jsonl").blocks == 3  # two acts and the seal
    assert store.info(CONTAINER, "chain/2031-02.2.jsonl").blocks == 2
    assert log.verify().intact


def test_a_move_whose_audit_line_fails_is_reported_done_and_recorded_later_once(registry, store, settings):
    """Issue 39, finding 7: a promotion moved the champion and then reported failure when the audit line could
    not be written. Now the move is reported as done with why its line is pending; the monitor's reconcile
    (``fraudops audit reconcile``) writes the line once, with the move's own id and time."""
    from shared.domain.audit import PendingAct
    from shared.governance.registry import moved

    class ChainDown:
        """The store, but the audit container refuses every append (throttled, or a policy misconfigured)."""

        def __init__(self, inner) -> None:
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def append(self, container, name, data, *, position):
            raise ConnectionError("the audit container is unreachable")

    down = Registry(ModelStore(ChainDown(store), settings.model_name), AuditLog(store))
    result = down.rollback(to=VERSIONS[1], actor="ops@bank", reason="bad release")
    assert isinstance(result, PendingAct)
    summary = moved(result)
    assert summary["champion"] == VERSIONS[1] and summary["audit_seq"] is None
    assert "is the champion" in summary["audit_pending"] and "could not be written yet" in summary["audit_pending"]
    assert registry.models.pointer().version == VERSIONS[1]  # it took effect
    assert [e.act for e in AuditLog(store).entries()][-1] == "promotion"  # and the chain does not know yet
    line = registry.models.reconcile_audit()
    assert line is not None and line.act == "rollback" and line.id == result.act.id and line.at == result.act.at
    assert line.details["version"] == VERSIONS[1] and line.details["previous"] == VERSIONS[2]
    assert registry.models.reconcile_audit() is None  # never twice
    assert registry.history()[-1]["act"] == "rollback" and AuditLog(store).verify().intact


def test_the_daily_run_anchors_the_audit_head_where_the_settings_say(store, settings, monkeypatch, capsys):
    """Issue 39, finding 8, through the composition root against Azurite: with ``AUDIT_ANCHOR_CONNECTION`` (in
    Azure ``AUDIT_ANCHOR_BLOB_URI``, a second account) ``fraudops monitor`` anchors the head there, and a chain
    cut behind it afterwards is critical even with the data account's reports gone."""
    from shared.adapters.anchor import HeadAnchor
    from shared.adapters.storage import AzureBlobStore, make_service_client
    from shared.domain.audit import Act
    from tests.conftest import clear_caches

    anchors = AzureBlobStore(make_service_client(settings.storage))
    anchors.ensure_containers(("anchors",))  # the Bicep creates it in the second account
    monkeypatch.setenv("AUDIT_ANCHOR_CONNECTION", settings.storage_connection)
    clear_caches()
    log = AuditLog(store)
    for i in range(3):
        log.record(Act("promotion", "ops@bank", f"release {i}", {"version": VERSIONS[0]}))
    assert main(["monitor", "--day", "2026-12-01"]) == 0
    anchored = HeadAnchor(anchors).latest()
    assert anchored is not None and anchored.day == "2026-12-01" and anchored.head_seq == log.verify().head_seq
    [(part, content)] = list(log.parts())
    store.delete(CONTAINER, part)  # cut the newest line (Azurite has no WORM) and delete the reports
    store.put_bytes(CONTAINER, part, b"".join(content.splitlines(keepends=True)[:-1]))
    for name in store.list_names("reports"):
        store.delete("reports", name)
    capsys.readouterr()
    main(["monitor", "--day", "2026-12-02"])
    summary = capsys.readouterr().out
    assert "critical" in summary and "audit_chain" in summary, summary[-2000:]
    clear_caches()
