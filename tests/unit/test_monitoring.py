"""Delayed labels, realised performance, live drift and alert bands, on the in-memory store.

Predictions are recorded through the real recorder and the stream archive's schema; labels go through
the labels ETL; the monitoring run reads both back. Every figure below is counted by hand.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from shared.domain.config import MonitoringConfig
from shared.domain.contracts import get_contract
from shared.domain.settings import Settings
from shared.etl.labels import ingest_labels
from shared.monitoring import alerts
from shared.monitoring.alerts import BANDS
from shared.monitoring.service import run_monitor
from shared.scoring.recorder import PredictionRecorder
from shared.scoring.records import Scored, parquet_bytes, prediction_table

CREDITCARD = get_contract("creditcard")

FEATURES = CREDITCARD.feature_names
DAY = date(2026, 12, 3)
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _settings(**values: str) -> MonitoringConfig:
    return Settings.model_validate({"COST_FN": "10", "COST_FP": "1", **values}).monitoring


def _served(store, ids, probs, *, version="v1", day=DAY, source="http", threshold=0.5, x=None, hour=10):
    n = len(ids)
    batch = Scored(
        x=np.zeros((n, len(FEATURES)), dtype=np.float32) if x is None else x,
        probabilities=np.asarray(probs, dtype=np.float64),
        transaction_ids=list(ids),
        customer_ids=[f"c-{i}" for i in ids],
        times=None,
        model_version=version,
        threshold=threshold,
        request_id=f"r-{ids[0]}",
        latency_ms=2.0,
        source=source,
        scored_at=datetime(day.year, day.month, day.day, hour, tzinfo=UTC),
    )
    if source == "http":
        recorder = PredictionRecorder(store, FEATURES)
        recorder.record(batch)
        recorder.close()
    else:  # the stream's archive: the same record in scored/
        name = f"date={day:%Y-%m-%d}/hour={hour:02d}/0-{ids[0]}-{ids[-1]}.parquet"
        store.put_bytes("scored", name, parquet_bytes(prediction_table(batch, FEATURES)))


def _labels(store, rows, name="labels/cb.csv"):
    body = "transaction_id,label,labelled_at,source\n" + "".join(f"{r}\n" for r in rows)
    store.put_bytes("raw", name, body.encode())
    return ingest_labels(store, name=name, now=NOW)


def test_bad_label_rows_are_quarantined_each_with_its_reason(memory_store):
    outcome = _labels(
        memory_store,
        [
            "t1,1,2026-12-01T10:00:00Z,chargeback",
            ",1,2026-12-01T10:00:00Z,x",
            "t3,2,2026-12-01T10:00:00Z,x",
            "t4,1,yesterday,x",
            "t5,0,2027-06-01T00:00:00Z,x",
            "t6,1",
            "t7,0,2026-12-01,investigator",  # a date alone is a time: midnight UTC
            "x" * 65 + ",1,2026-12-01T10:00:00Z,x",
        ],
    )
    assert (outcome.rows_in, outcome.rows_valid, outcome.rows_quarantined) == (8, 2, 6)
    quarantined = memory_store.get_bytes("quarantine", outcome.quarantine.removeprefix("quarantine/"))[0].decode()
    for reason in (
        "transaction_id is empty",
        "label must be one of 0, 1, got '2'",
        "labelled_at is not an ISO 8601 time",
        "is in the future",
        "wrong field count: 2 instead of 4",
        "transaction_id is longer than 64 characters",
    ):
        assert reason in quarantined, reason
    report = json.loads(memory_store.get_bytes("reports", outcome.report.removeprefix("reports/"))[0])
    assert report["rows_quarantined"] == 6 and report["dataset"] == "labels"


def test_labels_dated_ahead_or_at_zero_and_unreadable_fields_are_quarantined_not_crashing(memory_store):
    """Issue 39, finding 10: a verdict dated up to a day ahead was kept (and won "latest" over any correction),
    1970 was accepted, and a field over the CSV module's 131,072 characters crashed the labels ETL into the
    poison queue. Each is now one quarantined row with its reason; the good rows around them are kept."""
    ahead = (NOW + timedelta(hours=2)).isoformat()
    skewed = (NOW + timedelta(minutes=3)).isoformat()  # within the clock slack: kept
    outcome = _labels(
        memory_store,
        [
            "t1,1,2026-12-01T10:00:00Z,cb",
            f"t2,0,{ahead},inv",
            "t3,1,1970-01-01T00:00:00Z,cb",
            "t4," + "1" * 140_000 + ",2026-12-01T10:00:00Z,cb",
            f"t5,0,{skewed},inv",
        ],
    )
    assert (outcome.rows_in, outcome.rows_valid, outcome.rows_quarantined) == (5, 2, 3)
    quarantined = memory_store.get_bytes("quarantine", outcome.quarantine.removeprefix("quarantine/"))[0].decode()
    assert "is in the future" in quarantined and "before 2000" in quarantined
    assert "cannot be read as CSV (field larger than field limit" in quarantined


def test_a_labels_file_without_its_columns_is_rejected_whole_and_kept(memory_store):
    memory_store.put_bytes("raw", "labels/wrong.csv", b"id,fraud\nt1,1\n")
    outcome = ingest_labels(memory_store, name="labels/wrong.csv", now=NOW)
    assert outcome.status == "rejected" and "lacks transaction_id, label, labelled_at" in outcome.reason
    assert memory_store.list_names("raw") == [] and outcome.quarantine.startswith("quarantine/labels/files/")


def test_a_redelivered_labels_file_is_written_once_and_the_latest_verdict_wins(memory_store):
    rows = ["t1,1,2026-12-01T10:00:00Z,chargeback", "t1,0,2026-12-02T10:00:00Z,investigator"]
    first = _labels(memory_store, rows)
    second = _labels(memory_store, rows)
    assert first.outputs == second.outputs and len(memory_store.list_names("curated", "labels/")) == 1
    assert first.rows_valid == 1 and first.rows_duplicate == 1
    from shared.monitoring.served import load_labels

    labels = load_labels(memory_store).to_pylist()
    assert [(r["transaction_id"], r["label"], r["source"]) for r in labels] == [("t1", 0, "investigator")]


def test_labels_join_http_and_stream_predictions_and_nothing_is_counted_twice(memory_store):
    # HTTP: t1 flagged fraud, t2 flagged genuine-but-fraud, t3 a false alarm, t4 unlabelled
    _served(memory_store, ["t1", "t2", "t3", "t4"], [0.9, 0.1, 0.8, 0.2])
    _served(memory_store, ["t1"], [0.95], hour=11)  # a client's retry of t1: the first answer counts
    # the stream: s1 caught, s2 genuine and not flagged; another model version
    _served(memory_store, ["s1", "s2"], [0.7, 0.05], version="v2", source="stream")
    _labels(
        memory_store,
        [
            "t1,1,2026-12-03T12:00:00Z,cb",
            "t2,1,2026-12-04T10:00:00Z,cb",
            "t3,0,2026-12-03T14:00:00Z,inv",
            "s1,1,2026-12-03T20:00:00Z,cb",
            "s2,0,2026-12-04T10:00:00Z,inv",
            "never-served,1,2026-12-03T10:00:00Z,cb",
        ],
    )
    outcome = run_monitor(memory_store, _settings(), day=DAY, now=NOW)
    by = {(r.model_version, r.day): r for r in outcome.realised}
    v1, v2, total = by[("v1", "2026-12-03")], by[("v2", "2026-12-03")], by[("all", "all")]
    assert (v1.predictions, v1.labelled, v1.frauds, v1.caught, v1.missed, v1.false_alarms) == (4, 3, 2, 1, 1, 1)
    assert v1.precision == 0.5 and v1.recall == 0.5 and v1.cost == 10 * 1 + 1 * 1 and v1.coverage == 0.75
    assert (v2.predictions, v2.labelled, v2.caught, v2.false_alarms, v2.recall) == (2, 2, 1, 0, 1.0)
    assert (total.predictions, total.labelled, total.frauds, total.missed) == (6, 5, 3, 1)
    assert v1.label_delay_hours_median == pytest.approx(4.0)  # 2 h, 4 h and 24 h after 10:00
    assert outcome.history["http"][-1] == 5 and outcome.history["stream"][-1] == 2  # traffic counts the retry
    verdicts = {v.check: v for v in outcome.verdicts}
    assert verdicts["recall"].level == "warning" and verdicts["recall"].value == pytest.approx(2 / 3, abs=1e-4)
    assert verdicts["missed_frauds"].level == "ok"


def test_a_day_without_one_recorded_prediction_is_not_reported_ok(memory_store):
    """Issue 39, finding 11: with a champion deployed and nothing recorded all day (no traffic, or a recorder
    that cannot write) every check said no_data and the overall level was "ok". Now it warns, and says why."""
    from cli.devtools.models import publish_synthetic_model

    publish_synthetic_model(memory_store, "fraud", version="v1", trees=3, rows=3000, seed=1)
    _served(memory_store, ["t1"], [0.2], day=DAY - timedelta(days=1))  # yesterday's traffic, none today
    outcome = run_monitor(memory_store, _settings(), day=DAY, now=NOW)
    verdict = {v.check: v for v in outcome.verdicts}["predictions_today"]
    assert verdict.level == "warning" and verdict.value == 0 and "recorder" in verdict.message
    assert outcome.level != "ok"
    _served(memory_store, ["t2"], [0.2])  # one prediction today: that check is quiet again
    assert {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY, now=NOW).verdicts}[
        "predictions_today"
    ].level == "ok"


def test_an_audit_chain_cut_short_since_an_earlier_report_is_critical(memory_store):
    """Issue 39, finding 8: dropping the chain's newest lines (or month) passed ``verify``, and the head each
    daily report records was compared with nothing. Now a head behind an earlier report's is critical."""
    from shared.adapters.audit import CONTAINER, AuditLog
    from shared.domain.audit import Act

    log = AuditLog(memory_store, clock=lambda: NOW)
    for i in range(3):
        log.record(Act("promotion", "ops@bank", f"release {i}", {"version": f"v{i}"}))
    first = {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY - timedelta(days=1), now=NOW).verdicts}
    assert first["audit_chain"].level == "ok" and "3 lines" in first["audit_chain"].message
    [(part, content)] = list(log.parts())
    memory_store.put_bytes(CONTAINER, part, b"".join(content.splitlines(keepends=True)[:2]), overwrite=True)
    assert log.verify().intact  # the chain alone cannot tell: what is left still links up
    outcome = run_monitor(memory_store, _settings(), day=DAY, now=NOW)
    verdict = {v.check: v for v in outcome.verdicts}["audit_chain"]
    assert verdict.level == "critical" and "head is seq 1 where the head of" in verdict.message
    assert outcome.level == "critical"


def test_the_head_anchored_in_a_second_account_catches_what_the_data_account_can_hide(memory_store):
    """Issue 39, finding 8: the daily head copy lived in the same account as the chain, so whoever could cut the
    chain could delete the reports too, and the next run had nothing to compare with. The head anchored in a
    second account catches that, and a chain rewritten wholesale and extended past the anchored line."""
    from shared.adapters.anchor import HeadAnchor
    from shared.adapters.audit import CONTAINER, AuditLog
    from shared.adapters.memory_store import MemoryBlobStore
    from shared.domain.audit import Act, seal

    second = MemoryBlobStore()
    second.ensure_containers(("anchors",))
    anchor = HeadAnchor(second)
    log = AuditLog(memory_store, clock=lambda: NOW)
    for i in range(3):
        log.record(Act("promotion", "ops@bank", f"release {i}", {"version": f"v{i}"}))
    yesterday = DAY - timedelta(days=1)
    first = {v.check: v for v in run_monitor(memory_store, _settings(), day=yesterday, now=NOW, anchor=anchor).verdicts}
    assert first["audit_chain"].level == "ok" and anchor.latest().head_seq == 2
    [(part, content)] = list(log.parts())
    memory_store.put_bytes(CONTAINER, part, b"".join(content.splitlines(keepends=True)[:2]), overwrite=True)
    for name in memory_store.list_names("reports"):  # the attacker covers their tracks in the data account
        memory_store.delete("reports", name)
    unanchored = {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY, now=NOW).verdicts}
    assert unanchored["audit_chain"].level == "ok"  # with the reports gone, the data account alone is fooled
    cut = {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY, now=NOW, anchor=anchor).verdicts}
    assert cut["audit_chain"].level == "critical" and "head of" in cut["audit_chain"].message
    assert (
        "(anchored)" in cut["audit_chain"].message and anchor.latest().day == yesterday.isoformat()
    )  # not re-anchored
    # a chain rewritten from the start (valid hashes, no key) and grown past the anchored sequence number
    memory_store.delete(CONTAINER, part)
    prev, lines = "0" * 64, []
    for i in range(5):
        line = seal(Act("promotion", "forger", f"rewritten {i}", {"version": f"x{i}"}), seq=i, prev=prev)
        prev = line.hash
        lines.append(line.to_json())
    memory_store.put_bytes(CONTAINER, part, b"".join(lines))
    assert log.verify().intact and log.verify().head_seq == 4  # seq past the anchored head: not "behind"
    rewritten = {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY, now=NOW, anchor=anchor).verdicts}
    assert rewritten["audit_chain"].level == "critical" and "was rewritten" in rewritten["audit_chain"].message


def test_live_drift_against_the_champion_and_the_report(memory_store):
    from cli.devtools.models import publish_synthetic_model
    from training.generate import sample_features

    publish_synthetic_model(memory_store, "fraud", version="v1", trees=20, seed=1)
    x, _ = sample_features(3000, 9, fraud_rate=0.05)
    quiet = run_monitor(
        memory_store, _settings(), day=DAY, now=NOW
    )  # no traffic: drift has no data, never a silent "ok"
    assert {v.check: v.level for v in quiet.verdicts}["score_drift_psi"] == "no_data"
    shifted = x.copy()
    shifted[:, FEATURES.index("V14")] -= 6.0  # a feature moved far from its training distribution
    _served(memory_store, [f"a{i}" for i in range(3000)], np.full(3000, 0.01), x=shifted.astype(np.float32))
    outcome = run_monitor(memory_store, _settings(), day=DAY, now=NOW)
    verdicts = {v.check: v for v in outcome.verdicts}
    assert next(iter(outcome.feature_psi)) == "V14" and verdicts["feature_drift_psi"].level == "critical"
    assert "largest on V14" in verdicts["feature_drift_psi"].message
    assert verdicts["score_drift_psi"].level == "critical"  # every score in one band: far from the profile
    page = memory_store.get_bytes("reports", f"monitoring/{DAY}.html")[0].decode()
    assert page.count("class='panel'") == 9 and page.count("<svg") == 9
    document = json.loads(memory_store.get_bytes("reports", f"monitoring/{DAY}.json")[0])
    assert document["level"] == "critical" and document["champion"] == "v1"
    # the audit chain's head, kept outside the chain (the synthetic model's promotion is its one line)
    assert document["audit_chain"]["intact"] and document["audit_chain"]["head_seq"] == 0
    assert len(document["audit_chain"]["head_hash"]) == 64


def test_a_failed_retrain_and_an_overdue_round_raise_their_alerts(memory_store):
    succeeded = {"status": "promoted", "model_version": "20261202T200000Z-aaaaaaaa", "promoted": True}
    failed = {"status": "failed", "reason": "boom", "started_at": "2026-12-03T02:00:00.123456+00:00"}
    memory_store.put_bytes("reports", "training/20261202T200000Z-aaaaaaaa.json", json.dumps(succeeded).encode())
    memory_store.put_bytes("reports", "training/failed-20261203T020000123456Z.json", json.dumps(failed).encode())
    deadline = (NOW - timedelta(hours=30)).timestamp()
    update = {"examples": 10, "metrics": {}, "update": "u.npz", "received_at": deadline - 60}
    state = {
        "round": 3,
        "kind": "model",
        "status": "open",
        "opened_at": deadline - 3600,
        "deadline": deadline,
        "participants": {"a": update},
        "min_clients": 3,
        "aggregator": "fedavg",
        "clip_bound": None,
        "max_weight_share": 1.0,
    }
    memory_store.put_bytes("federated", "fraud-lr/round-3/state.json", json.dumps(state).encode())
    outcome = run_monitor(memory_store, _settings(), day=DAY, now=NOW)
    verdicts = {v.check: v for v in outcome.verdicts}
    assert verdicts["retrain"].level == "critical" and "failed-20261203" in verdicts["retrain"].message
    assert verdicts["hours_round_overdue"].level == "critical"
    assert "round 3 is open with 1 of 3 updates" in verdicts["hours_round_overdue"].message
    # the success alone, 40 hours ago: a warning that retraining stopped
    memory_store.delete("reports", "training/failed-20261203T020000123456Z.json")
    memory_store.delete("federated", "fraud-lr/round-3/state.json")
    calm = {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY, now=NOW).verdicts}
    assert calm["hours_since_retrain"].level == "warning" and calm["hours_round_overdue"].level == "ok"


@pytest.mark.parametrize("check", sorted(BANDS))
def test_each_band_fires_across_its_edges_and_stays_quiet_inside(check):
    band = BANDS[check]
    step = -1 if band.lower_is_worse else 1
    quiet = band.warning - step * abs(band.warning or 1) * 0.5
    between = (band.warning + band.critical) / 2
    beyond = band.critical + step * abs(band.critical or 1) * 0.5
    assert alerts.judge(check, quiet).level == "ok"
    assert alerts.judge(check, between).level == "warning"
    assert alerts.judge(check, beyond).level == "critical"
    assert alerts.judge(check, None, why_no_data="nothing").level == "no_data"


def test_the_verdicts_are_exported_as_metrics(memory_store, telemetry):
    run_monitor(memory_store, _settings(), day=DAY, now=NOW)
    points = {p.attributes["check"]: p.value for p in telemetry.points("fraudops.monitor.alert")}
    assert points["recall"] == -1 and points["hours_round_overdue"] == 0  # no labels: no data; no round: ok


def test_an_erased_customers_labelled_transactions_never_come_back_as_training_rows(memory_store):
    """Issue 39, finding 6: a verdict landing after a customer's erasure put their served transaction back
    into curated/ (the feedback ignored the erasure list). Now it is left out, and counted."""
    import io

    import pyarrow.parquet as pq

    from shared.adapters.erasures import marker_name
    from shared.monitoring.feedback import land_labels

    _served(memory_store, ["t1", "t3"], [0.9, 0.8])  # customers c-t1 and c-t3
    memory_store.put_bytes("curated", marker_name("c-t1"), b"{}")  # c-t1 was erased since
    body = "transaction_id,label,labelled_at\nt1,1,2026-12-04T01:00:00Z\nt3,0,2026-12-04T01:00:00Z\n"
    memory_store.put_bytes("raw", "labels/e.csv", body.encode())
    landed = land_labels(memory_store, _settings(), name="labels/e.csv", now=NOW)
    assert landed.feedback is not None and (landed.feedback.written, landed.feedback.erased) == (1, 1)
    table = pq.read_table(
        io.BytesIO(memory_store.get_bytes("curated", landed.feedback.path.removeprefix("curated/"))[0])
    )
    assert table.column("transaction_id").to_pylist() == ["t3"]


def test_a_transaction_id_scored_with_other_features_first_never_plants_its_label(memory_store):
    """Issue 39, finding 9: anyone with a function key could score a bank's next transaction id first, with
    features of their choosing; the bank's chargeback then labelled the attacker's features in training.
    An id scored with different features is left out of the training rows (a retry with the same is not)."""
    import io

    import pyarrow.parquet as pq

    from shared.monitoring.feedback import land_labels

    planted = np.full((1, len(FEATURES)), 0.0, np.float32)
    real = np.full((1, len(FEATURES)), 1.5, np.float32)
    _served(memory_store, ["t9"], [0.1], x=planted, hour=9)  # the attacker, first
    _served(memory_store, ["t9"], [0.8], x=real, hour=10)  # the bank's own payment
    _served(memory_store, ["t5"], [0.7], x=real, hour=10)
    _served(memory_store, ["t5"], [0.7], x=real, hour=11)  # a retry: the same features
    body = "transaction_id,label,labelled_at\nt9,1,2026-12-04T01:00:00Z\nt5,1,2026-12-04T01:00:00Z\n"
    memory_store.put_bytes("raw", "labels/p.csv", body.encode())
    landed = land_labels(memory_store, _settings(), name="labels/p.csv", now=NOW)
    assert landed.feedback is not None and (landed.feedback.written, landed.feedback.conflicting) == (1, 1)
    table = pq.read_table(
        io.BytesIO(memory_store.get_bytes("curated", landed.feedback.path.removeprefix("curated/"))[0])
    )
    assert table.column("transaction_id").to_pylist() == ["t5"]


def test_labelled_served_transactions_become_training_rows_once(memory_store):
    """Each labelled transaction that was served becomes one row of the contract, with its features and the
    verdict as Class; a second labels file naming it again, or the same file again, adds nothing."""
    import io

    import pyarrow.parquet as pq

    from shared.etl import manifest
    from shared.monitoring.feedback import land_labels

    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, len(FEATURES))).astype(np.float32)
    _served(memory_store, ["t1", "t2", "t3", "t4"], [0.9, 0.1, 0.8, 0.2], x=x)
    body = "transaction_id,label,labelled_at\n" + "".join(
        f"{t},{c},2026-12-04T01:00:00Z\n" for t, c in (("t1", 1), ("t3", 0), ("never-served", 1))
    )
    memory_store.put_bytes("raw", "labels/a.csv", body.encode())
    first = land_labels(memory_store, _settings(), name="labels/a.csv", now=NOW)
    assert first.feedback is not None
    assert (first.feedback.labelled, first.feedback.matched, first.feedback.written) == (3, 2, 2)
    table = pq.read_table(
        io.BytesIO(memory_store.get_bytes("curated", first.feedback.path.removeprefix("curated/"))[0])
    )
    rows = {r["transaction_id"]: r for r in table.to_pylist()}
    assert set(rows) == {"t1", "t3"} and rows["t1"]["Class"] == 1 and rows["t3"]["Class"] == 0
    assert rows["t3"]["V5"] == pytest.approx(float(x[2, 4])) and rows["t1"]["customer_id"] == "c-t1"
    assert table.column_names[:1] == ["Time"] and table.schema.field("Class").type == "int8"
    listed, _ = manifest.read_manifest(memory_store, "creditcard")
    assert [f.path for f in listed.files] == [first.feedback.path.removeprefix("curated/")]
    again = land_labels(memory_store, _settings(), name="labels/a.csv", now=NOW)  # redelivered
    assert again.feedback is not None and again.feedback.written == 0 and again.feedback.already_curated == 2
    memory_store.put_bytes(
        "raw",
        "labels/b.csv",
        b"transaction_id,label,labelled_at\nt1,0,2026-12-04T02:00:00Z\nt2,1,2026-12-04T02:00:00Z\n",
    )
    # issue 39, finding 10: the first verdict fixed the training row forever. t1's verdict is corrected (1, then
    # 0 an hour later): its row is written with the new one and the first part rewritten without the old
    later = land_labels(memory_store, _settings(), name="labels/b.csv", now=NOW)
    assert later.feedback is not None and (later.feedback.written, later.feedback.corrected) == (2, 1)
    listed, _ = manifest.read_manifest(memory_store, "creditcard")
    assert len(listed.files) == 2 and sum(f.rows for f in listed.files) == 3

    def training_rows() -> dict[str, int]:
        listed, _ = manifest.read_manifest(memory_store, "creditcard")
        tables = [pq.read_table(io.BytesIO(memory_store.get_bytes("curated", f.path)[0])) for f in listed.files]
        pairs = [(r["transaction_id"], r["Class"]) for t in tables for r in t.to_pylist()]
        assert len(pairs) == len(dict(pairs)), pairs  # one training row per transaction
        return dict(pairs)

    assert training_rows() == {"t1": 0, "t2": 1, "t3": 0}
    assert all(memory_store.list_names("curated", f.path) == [f.path] for f in listed.files)  # old part deleted
    # a file landing late with an older verdict does not undo the newer one
    memory_store.put_bytes("raw", "labels/c.csv", b"transaction_id,label,labelled_at\nt1,1,2026-12-04T01:30:00Z\n")
    late = land_labels(memory_store, _settings(), name="labels/c.csv", now=NOW)
    assert late.feedback is not None and (late.feedback.written, late.feedback.corrected) == (0, 0)
    assert training_rows() == {"t1": 0, "t2": 1, "t3": 0}


def test_labelled_rows_are_read_by_the_training_window(memory_store):
    """The curated rows have the shape the retraining's loader reads: it takes them with the rest."""
    from shared.monitoring.feedback import land_labels
    from training.window import load_window

    rng = np.random.default_rng(4)
    ids = [f"t{i}" for i in range(50)]
    _served(memory_store, ids, rng.uniform(size=50), x=rng.normal(size=(50, len(FEATURES))).astype(np.float32))
    body = "transaction_id,label,labelled_at\n" + "".join(
        f"t{i},{int(i % 10 == 0)},2026-12-04T01:00:00Z\n" for i in range(50)
    )
    memory_store.put_bytes("raw", "labels/all.csv", body.encode())
    landed = land_labels(memory_store, _settings(), name="labels/all.csv", now=NOW)
    assert landed.feedback is not None
    window = load_window(memory_store, CREDITCARD, landed.feedback.dataset_version)
    assert window.x.shape == (50, len(FEATURES)) and int(window.y.sum()) == 5


def test_the_api_error_share_is_judged_from_the_counted_answers(memory_store):
    prefix = f"_requests/date={DAY.isoformat()}/"
    memory_store.put_bytes("predictions", f"{prefix}a-000001.json", json.dumps({"2xx": 900, "4xx": 50}).encode())
    memory_store.put_bytes("predictions", f"{prefix}b-000001.json", json.dumps({"2xx": 30, "5xx": 20}).encode())
    verdicts = {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY, now=NOW).verdicts}
    assert verdicts["api_error_share"].level == "warning" and verdicts["api_error_share"].value == 0.02
    assert "20 of 1000 requests answered 5xx" in verdicts["api_error_share"].message


def test_an_overdue_secure_round_is_counted_by_the_banks_answering_its_phase(memory_store):
    deadline = (NOW - timedelta(hours=30)).timestamp()
    state = {
        "round": 2,
        "kind": "model",
        "status": "masking",
        "mode": "secure",
        "opened_at": deadline - 3600,
        "deadline": deadline,
        "min_clients": 3,
        "aggregator": "fedavg",
        "clip_bound": 1.0,
        "max_weight_share": 1.0,
        "members": ["a", "b", "c"],
        "shared": {"a": "s-a", "b": "s-b", "c": "s-c"},
        "masked": {"a": "m-a"},
    }
    memory_store.put_bytes("federated", "fraud-lr/round-2/state.json", json.dumps(state).encode())
    verdicts = {v.check: v for v in run_monitor(memory_store, _settings(), day=DAY, now=NOW).verdicts}
    assert verdicts["hours_round_overdue"].level == "critical"
    assert "round 2 is masking with 1 of 3 banks answering its phase" in verdicts["hours_round_overdue"].message
