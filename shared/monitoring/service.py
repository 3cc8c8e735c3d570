"""The monitoring run: one day of live traffic and everything labelled so far, judged against the bands.

``run_monitor(store, config, day=...)`` reads what was served (``shared.monitoring.served``),
joins the delayed labels, and computes:

* realised performance per model version and day scored, over ``MONITOR_LOOKBACK_DAYS`` days up
  to ``day`` (labels arrive weeks late, so the window reaches back);
* drift on ``day``'s traffic: PSI of the score distribution against the champion's score profile
  (its backtest scores on unseen rows), PSI of each feature against its training profile, and the
  share flagged;
* the operational checks: latency (p95 of the served requests), the stream's dead-letter rate, the
  last retraining run, federated rounds past their deadline;
* a verdict per check (``shared.monitoring.alerts``), exported as metrics
  (``fraudops.monitor.alert``) and written with the figures to ``reports/monitoring/<day>.json``
  and ``.html`` (``shared.monitoring.report``).

It reads and writes Blob only; the timer (``%MONITOR_SCHEDULE%``) and ``fraudops monitor`` call it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters import documents
from shared.domain import drift, layout
from shared.domain.config import MonitoringConfig
from shared.domain.contracts import get_contract
from shared.domain.documents.monitoring import MonitoringReport
from shared.domain.documents.training import TrainingReport
from shared.domain.errors import FraudOpsError
from shared.domain.results import as_dict
from shared.domain.telemetry import instruments, span
from shared.monitoring import alerts
from shared.monitoring.alerts import Verdict
from shared.monitoring.realised import Realised, realised
from shared.monitoring.served import days, first_answer, join_labels, load_labels, load_served

if TYPE_CHECKING:
    import pyarrow as pa

    from shared.adapters.anchor import HeadAnchor
    from shared.adapters.storage import BlobStore
    from shared.domain.documents.model import ModelManifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MonitorOutcome:
    """What one monitoring run found (also its JSON report, through ``as_dict``)."""

    day: str
    window: list[str]
    champion: str | None
    level: alerts.Level
    verdicts: list[Verdict]
    realised: list[Realised]
    served_today: int
    share_flagged_today: float | None
    score_psi: float | None
    feature_psi: dict[str, float]
    score_shares: dict[str, list[float]]
    new_categories: dict[str, int] = field(default_factory=dict)  # today's values the champion never saw, by feature
    history: dict[str, Any] = field(default_factory=dict)
    report: str = ""
    # the audit chain's head as it was today: kept outside the chain, so lines cut off its end would show
    audit_chain: dict[str, Any] = field(default_factory=dict)
    behaviour_skew: dict[str, Any] = field(default_factory=dict)  # the daily skew check (shared.monitoring.skew)

    def headline(self) -> dict[str, Any]:
        """The figures a person reads first (the CLI's summary line, the demo's)."""
        total = self.realised[-1]
        return {
            "day": self.day,
            "level": self.level,
            "alerts": {v.check: v.level for v in self.verdicts if v.level in ("warning", "critical")},
            "served_today": self.served_today,
            "served": total.predictions,
            "labelled": total.labelled,
            "precision": total.precision,
            "recall": total.recall,
            "frauds_caught": total.caught,
            "frauds_missed": total.missed,
            "false_alarms": total.false_alarms,
            "cost": total.cost,
            "score_psi": self.score_psi,
            "report": self.report.removesuffix(".json") + ".html",
        }


def run_monitor(
    store: BlobStore,
    config: MonitoringConfig,
    *,
    day: date,
    now: datetime | None = None,
    anchor: HeadAnchor | None = None,
) -> MonitorOutcome:
    """Judge ``day`` (UTC) and the labelled window ending on it; write the report; export the verdicts. With
    ``anchor`` (a second account), the audit chain is judged against the head anchored there, and today's
    head is anchored when it holds."""
    now = now or datetime.now(UTC)
    with span("monitor.run", day=day.isoformat()):
        outcome = _run(store, config, day=day, now=now, anchor=anchor)
    m = instruments()
    for v in outcome.verdicts:
        m.monitor_alerts.set(alerts.LEVEL_VALUE[v.level], {"check": v.check})
        if v.value is not None:
            m.monitor_values.set(v.value, {"check": v.check})
    total = outcome.realised[-1]
    for name, value in (("precision", total.precision), ("coverage", total.coverage)):
        if value is not None:
            m.monitor_values.set(value, {"check": name})
    (log.warning if outcome.level != "ok" else log.info)(
        "monitoring %s: %s (%s)",
        outcome.day,
        outcome.level,
        "; ".join(v.message for v in outcome.verdicts if v.level in ("warning", "critical")) or "every check ok",
    )
    return outcome


def _audit_head(store: BlobStore) -> dict[str, Any]:
    from shared.adapters.audit import AuditLog

    chain = AuditLog(store).verify()
    broken = (
        f"{chain.broken.part} line {chain.broken.line}: {chain.broken.reason}"
        + (f" (and {len(chain.breaks) - 1} more breaks after it)" if len(chain.breaks) > 1 else "")
        if chain.broken
        else None
    )
    return {
        "intact": chain.intact,
        "lines": chain.lines,
        "head_seq": chain.head_seq,
        "head_hash": chain.head_hash,
        "broken": broken,
    }


def _audit_verdict(store: BlobStore, day: date, head: dict[str, Any], anchor: HeadAnchor | None = None) -> Verdict:
    """Critical when the audit chain is broken, or when its head is behind (or other than) the head recorded
    before: anchored in the second account when there is one, else an earlier day's report. Lines cut off its
    end, or a month deleted, which the chain alone cannot show (issue 39, finding 8). With an anchor, the
    chain's line at the anchored sequence number must be the anchored line: a chain rewritten and extended
    past it is caught too. A head that holds is anchored."""
    if not head["intact"]:
        return alerts.failed("audit_chain", f"the audit chain is broken at {head['broken']}")
    if anchor is not None:
        try:
            anchored = anchor.latest()
        except Exception as exc:  # the second account unreachable: said, and judged against the reports instead
            log.error("audit: the anchored head could not be read (%s); comparing with the reports", exc)
            return _audit_verdict(store, day, head, None)
        earlier = (
            (f"{anchored.day} (anchored)", {"head_seq": anchored.head_seq, "head_hash": anchored.head_hash})
            if anchored
            else None
        )
    else:
        earlier = _earlier_audit_head(store, day)
    if earlier is not None:
        when, was = earlier
        seq, was_seq = head["head_seq"], was.get("head_seq")
        behind = was_seq is not None and (seq is None or seq < was_seq)
        replaced = was_seq is not None and seq == was_seq and head["head_hash"] != was.get("head_hash")
        if behind or replaced:
            return alerts.failed(
                "audit_chain",
                f"the audit chain's head is seq {seq} where the head of {when} was seq {was_seq} "
                f"({'lines were cut off its end or a month was deleted' if behind else 'its last line was replaced'})",
            )
        if (
            anchor is not None
            and was_seq is not None
            and not _holds_line(store, int(was_seq), str(was.get("head_hash")))
        ):
            return alerts.failed(
                "audit_chain",
                f"the audit chain's line at seq {was_seq} is not the line anchored on {when}: the chain was "
                "rewritten (and extended past it)",
            )
    if anchor is not None:
        try:
            anchor.record(
                day.isoformat(), head_seq=head["head_seq"], head_hash=str(head["head_hash"]), lines=int(head["lines"])
            )
        except Exception as exc:  # the next run compares with the last head anchored: said, the run goes on
            log.error("audit: today's head could not be anchored (%s)", exc)
    lines = int(head["lines"])
    return Verdict("audit_chain", "ok", float(lines), None, None, f"intact, {lines} lines, head seq {head['head_seq']}")


def _holds_line(store: BlobStore, seq: int, line_hash: str) -> bool:
    """Whether the chain's line at ``seq`` has the hash ``line_hash``."""
    from shared.adapters.audit import AuditLog

    return any(line.seq == seq and line.hash == line_hash for line in AuditLog(store).entries())


def _earlier_audit_head(store: BlobStore, day: date) -> tuple[str, dict[str, Any]] | None:
    """The audit head the latest earlier day's report recorded, and that day; None when there is none."""
    mine = layout.monitoring_report(day.isoformat())
    earlier = sorted(
        n for n in store.list_names(layout.REPORTS, layout.MONITORING_REPORTS) if n.endswith(".json") and n < mine
    )
    for name in reversed(earlier):
        try:
            report = documents.read(store, layout.REPORTS, name, MonitoringReport)[0]
        except (FraudOpsError, ValueError):  # an unreadable report: look further back
            continue
        if report.audit_chain:
            return name.removeprefix(layout.MONITORING_REPORTS).removesuffix(".json"), report.audit_chain
    return None


def _run(
    store: BlobStore, config: MonitoringConfig, *, day: date, now: datetime, anchor: HeadAnchor | None = None
) -> MonitorOutcome:
    from shared.monitoring.report import monitoring_html

    contract = get_contract(config.dataset_name)
    features = contract.feature_names
    start = day - timedelta(days=config.monitor_lookback_days - 1)
    every = load_served(store, start, day, first_only=False)  # traffic counts every answer, retries included
    served = first_answer(every)
    joined = join_labels(served, load_labels(store))
    figures = realised(served, joined, cost_fn=config.cost_fn, cost_fp=config.cost_fp)
    today = load_served(store, day, day, features=features)
    champion, manifest = _champion(store, config)
    score_psi, score_shares = _score_drift(today, manifest)
    feature_psi, new_categories = _feature_drift(today, manifest, features, config)
    flagged = today.column("is_fraud").to_numpy(zero_copy_only=False)
    history = _history(store, every, start, day, config)
    verdicts = _verdicts(figures[-1], score_psi, feature_psi, history, now=now, has_champion=manifest is not None)
    verdicts.append(
        alerts.judge(
            "predictions_today",
            float(today.num_rows) if manifest is not None else None,
            detail="recorded over HTTP and the stream",
            why_no_data="no champion deployed yet",
        )
    )
    skew: dict[str, Any] = {}
    if not contract.behaviour.empty:
        from shared.monitoring.skew import check_skew

        found = check_skew(store, contract, day)
        skew = found.summary()
        detail = f"{found.differ} of {found.sampled} sampled rows differ" + (
            f"; first: {found.worst['transaction_id']} {found.worst['feature']} served {found.worst['served']:.6g}, "
            f"offline {found.worst['offline']:.6g}"
            if found.worst
            else ""
        )
        verdicts.append(
            alerts.judge("behaviour_skew_share", found.share, detail=detail, why_no_data="no behaviour served today")
        )
    audit = _audit_head(store)
    verdicts.append(_audit_verdict(store, day, audit, anchor))
    outcome = MonitorOutcome(
        day=day.isoformat(),
        window=[start.isoformat(), day.isoformat()],
        champion=champion,
        level=alerts.worst(verdicts),
        verdicts=verdicts,
        realised=figures,
        served_today=today.num_rows,
        share_flagged_today=round(float(flagged.mean()), 5) if flagged.size else None,
        score_psi=score_psi,
        feature_psi=feature_psi,
        new_categories=new_categories,
        score_shares=score_shares,
        history=history,
        report=layout.display(layout.REPORTS, layout.monitoring_report(day.isoformat())),
        audit_chain=audit,
        behaviour_skew=skew,
    )
    document = MonitoringReport.model_validate(as_dict(outcome))
    documents.write(store, layout.REPORTS, layout.monitoring_report(day.isoformat()), document)
    store.put_bytes(
        layout.REPORTS,
        layout.monitoring_report(day.isoformat(), "html"),
        monitoring_html(document).encode(),
        content_type="text/html; charset=utf-8",
    )
    return outcome


def _champion(store: BlobStore, config: MonitoringConfig) -> tuple[str | None, ModelManifest | None]:
    from shared.adapters.model_store import ModelStore

    models = ModelStore(store, config.model_name)
    pointer = models.pointer()
    if pointer is None:
        return None, None
    try:
        return pointer.version, models.manifest(pointer.version, expected_sha256=pointer.manifest_sha256)
    except FraudOpsError as exc:
        log.warning("monitoring: the champion's manifest cannot be read (%s); drift not checked", exc.reason)
        return pointer.version, None


def _score_drift(today: pa.Table, manifest: ModelManifest | None) -> tuple[float | None, dict[str, list[float]]]:
    reference = manifest.score_profile if manifest else None
    if not reference or today.num_rows == 0:
        return None, {}
    live = drift.score_profile(
        today.column("fraud_probability").to_numpy(zero_copy_only=False), tuple(reference["edges"])
    )
    value = drift.psi(np.asarray(reference["shares"]), np.asarray(live["shares"]))
    return round(value, 5), {
        "edges": reference["edges"],
        "reference": reference["shares"],
        "live": [round(s, 5) for s in live["shares"]],
    }


def _feature_drift(
    today: pa.Table, manifest: ModelManifest | None, features: list[str], config: MonitoringConfig
) -> tuple[dict[str, float], dict[str, int]]:
    """PSI per feature against the champion's training profile (a category by its share, in the champion's
    codes); and, per categorical feature, how many of today's values the champion never saw."""
    from shared.domain.encoding import Encoding

    reference = manifest.training_profile if manifest else None
    if not reference or manifest is None or today.num_rows == 0 or any(f not in today.column_names for f in features):
        return {}, {}
    encoding = Encoding.from_manifest(features, manifest.categories)
    columns, new = [], {}
    for name in features:
        values = today.column(name).to_numpy(zero_copy_only=False)
        if name in encoding.vocabularies:
            codes = encoding.vocabularies[name].codes(values)
            new[name] = int(np.sum(np.isnan(codes) & np.array([v is not None for v in values])))
            values = codes
        columns.append(np.asarray(values, dtype=np.float64))
    compared = drift.compare(
        reference,
        np.column_stack(columns),
        features,
        psi_threshold=config.drift_psi_threshold,
        alert_share=config.drift_alert_share,
    )
    psi = {name: f["psi"] for name, f in sorted(compared["features"].items(), key=lambda kv: -kv[1]["psi"])}
    return psi, new


def _history(store: BlobStore, every: pa.Table, start: date, day: date, config: MonitoringConfig) -> dict[str, Any]:
    """Per-day series for the dashboard panels, and the retraining and federated history."""
    import pyarrow.compute as pc

    labels = [d.isoformat() for d in days(start, day)]
    # days and sources as dictionary codes: a month of records never becomes millions of Python strings
    scored_day, day_names = codes(pc.strftime(every.column("scored_at"), format="%Y-%m-%d"))
    source, source_names = codes(every.column("source"))
    http_code, stream_code = (source_names.index(n) if n in source_names else -1 for n in ("http", "stream"))
    latency = every.column("latency_ms").to_numpy(zero_copy_only=False)
    flagged = every.column("is_fraud").to_numpy(zero_copy_only=False).astype(bool)
    per_day: dict[str, list[Any]] = {
        "http": [],
        "stream": [],
        "latency_p50_ms": [],
        "latency_p95_ms": [],
        "share_flagged": [],
        "deadlettered": [],
    }
    for d in labels:
        mine = scored_day == (day_names.index(d) if d in day_names else -1)
        http = mine & (source == http_code)
        per_day["http"].append(int(http.sum()))
        per_day["stream"].append(int((mine & (source == stream_code)).sum()))
        per_day["latency_p50_ms"].append(round(float(np.percentile(latency[http], 50)), 3) if http.any() else None)
        per_day["latency_p95_ms"].append(round(float(np.percentile(latency[http], 95)), 3) if http.any() else None)
        per_day["share_flagged"].append(round(float(flagged[mine].mean()), 5) if mine.any() else None)
        per_day["deadlettered"].append(_deadlettered(store, d))
    return {
        "days": labels,
        **per_day,
        "requests_today": _answers(store, labels[-1]),
        "retrains": _retrains(store),
        "rounds": _rounds(store, config),
    }


def codes(values: Any) -> tuple[np.ndarray, list[str]]:
    """An Arrow string column as integer codes and the distinct values they index (nulls: -1)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = (
            encoded.combine_chunks() if encoded.num_chunks else pa.array([], pa.dictionary(pa.int32(), pa.string()))
        )
    indices = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return indices, [str(v) for v in encoded.dictionary.to_pylist()]


def _answers(store: BlobStore, day: str) -> dict[str, int]:
    """HTTP answers on ``day`` by status class, as the recorders counted them (``shared.scoring.records``)."""
    totals: dict[str, int] = {}
    for name in store.list_names(layout.PREDICTIONS, layout.request_counts_day(day)):
        try:
            counts = json.loads(store.get_bytes(layout.PREDICTIONS, name)[0])
        except (FraudOpsError, ValueError):
            continue
        for status_class, n in counts.items():
            totals[status_class] = totals.get(status_class, 0) + int(n)
    return totals


def _deadlettered(store: BlobStore, day: str) -> int:
    """Events dead-lettered on ``day`` (one JSON line each)."""
    count = 0
    for name in store.list_names(layout.DEADLETTER, layout.stream_day(day)):
        try:
            count += store.get_bytes(layout.DEADLETTER, name)[0].count(b"\n")
        except FraudOpsError:
            continue
    return count


def _retrains(store: BlobStore, keep: int = 30) -> list[dict[str, Any]]:
    """The newest retraining runs: when each started (its report's name: ``<version>.json`` or
    ``failed-<time>.json``) and how it ended (the report's ``status``)."""
    named = []
    for name in store.list_names(layout.REPORTS, layout.TRAINING_REPORTS):
        stem = name.removeprefix(layout.TRAINING_REPORTS)
        if not stem.endswith(".json") or "/" in stem:
            continue
        stamp = stem.removesuffix(".json").removeprefix("failed-")[:15]
        try:
            when = datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
        except ValueError:
            continue
        named.append((when, name))
    runs = []
    for when, name in sorted(named)[-keep:]:
        try:
            report, _ = documents.read(store, layout.REPORTS, name, TrainingReport)
        except FraudOpsError as exc:
            log.warning("monitoring: the training report %s cannot be read (%s); left out", name, exc.reason)
            continue
        status = "failed" if report.status == "failed" else "succeeded"
        runs.append({"at": when.isoformat(), "status": status, "report": name})
    return runs


def _rounds(store: BlobStore, config: MonitoringConfig) -> list[dict[str, Any]]:
    """Each round of the federated experiment: its status, deadline and participants."""
    from shared.federated.repository import RoundRepository

    repository = RoundRepository(store, config.fl_experiment)
    rounds = []
    for name in store.list_names(layout.FEDERATED, layout.round_prefix(config.fl_experiment)):
        number = name.removeprefix(layout.round_prefix(config.fl_experiment)).split("/", 1)[0]
        if not number.isdigit() or name != layout.round_state(config.fl_experiment, int(number)):
            continue
        try:
            state = repository.read(int(number))[0]
        except FraudOpsError as exc:
            log.warning("monitoring: the state of round %s cannot be read (%s); left out", number, exc.reason)
            continue
        rounds.append(
            {
                "round": state.round,
                "status": str(state.status),
                "opened_at": state.opened_at,
                "deadline": state.deadline,
                "closed_at": state.closed_at,
                "participants": state.answered,
                "mode": state.mode,
                "min_clients": state.min_clients,
            }
        )
    return sorted(rounds, key=lambda r: r["round"] or 0)


def _verdicts(
    total: Realised,
    score_psi: float | None,
    feature_psi: dict[str, float],
    history: dict[str, Any],
    *,
    now: datetime,
    has_champion: bool,
) -> list[Verdict]:
    judge = alerts.judge
    no_labels = "no labelled fraud in the window yet (labels arrive later)"
    window = f"{total.frauds} labelled frauds in the window"
    verdicts = [
        judge("recall", total.recall, detail=window, why_no_data=no_labels),
        judge("missed_frauds", float(total.missed) if total.labelled else None, detail=window, why_no_data=no_labels),
    ]
    no_traffic = "no traffic today" if has_champion else "no champion with a training profile"
    verdicts.append(judge("score_drift_psi", score_psi, why_no_data=no_traffic))
    top = next(iter(feature_psi.items()), None)
    verdicts.append(
        judge(
            "feature_drift_psi",
            top[1] if top else None,
            detail=f"largest on {top[0]}" if top else "",
            why_no_data=no_traffic,
        )
    )
    latency = history["latency_p95_ms"][-1]
    verdicts.append(judge("latency_p95_ms", latency, why_no_data="no HTTP request today"))
    answers = history["requests_today"]
    total, errors = sum(answers.values()), answers.get("5xx", 0)
    verdicts.append(
        judge(
            "api_error_share",
            errors / total if total else None,
            detail=f"{errors} of {total} requests answered 5xx",
            why_no_data="no HTTP request counted today",
        )
    )
    stream_today, dead_today = history["stream"][-1], history["deadlettered"][-1]
    verdicts.append(
        judge(
            "deadletter_rate",
            dead_today / (stream_today + dead_today) if stream_today + dead_today else None,
            detail=f"{dead_today} dead-lettered, {stream_today} scored",
            why_no_data="no stream events today",
        )
    )
    verdicts.append(_retrain_verdict(history["retrains"], now))
    verdicts.extend(_round_verdicts(history["rounds"], now))
    return verdicts


def _retrain_verdict(runs: list[dict[str, Any]], now: datetime) -> Verdict:
    if not runs:
        return alerts.judge("hours_since_retrain", None, why_no_data="no retraining has run yet")
    if runs[-1]["status"] == "failed":
        return alerts.failed("retrain", f"the last retraining run ({runs[-1]['at']}) failed: {runs[-1]['report']}")
    succeeded = [r for r in runs if r["status"] == "succeeded"]
    hours = (now - datetime.fromisoformat(succeeded[-1]["at"])).total_seconds() / 3600
    return alerts.judge("hours_since_retrain", hours, detail=f"last success {succeeded[-1]['at']}")


def _round_verdicts(rounds: list[dict[str, Any]], now: datetime) -> list[Verdict]:
    late = [r for r in rounds if r["status"] != "closed" and r.get("deadline")]
    if not late:
        return [alerts.judge("hours_round_overdue", 0.0, detail="no round open past its deadline")]
    return [
        alerts.judge(
            "hours_round_overdue",
            max((now.timestamp() - float(r["deadline"])) / 3600, 0.0),
            detail=f"round {r['round']} is {r['status']} with {r['participants']} of {r['min_clients']} "
            + ("banks answering its phase" if r.get("mode") == "secure" else "updates"),
        )
        for r in late
    ]
