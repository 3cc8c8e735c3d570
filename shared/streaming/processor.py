"""Score one batch of stream events: decode, validate, score in one call, archive, alert, dead-letter.

Delivery is at least once, a redelivery may be cut into different batches, and the trigger
checkpoints even when the function throws, so:

* each partition has a small ledger (``shared.streaming.ledger``): a batch first settles an intent
  a crashed attempt left, then skips every event already committed, however the redelivery is cut,
  and writes each remaining event into exactly one output, create-only;
* bad data never raises: each event that cannot be processed goes to ``deadletter`` with its
  original body, partition, sequence number, enqueued time and reason (``shared.streaming.deadletter``);
* a storage failure is retried with bounded exponential backoff (``shared.streaming.retry``); if it
  persists, the whole batch is dead-lettered with the reason, and if even that cannot reach storage it
  is spooled to a local folder and logged, before the function returns;
* any other failure (a model refresh that raises an Azure SDK error, a corrupt model, a bug)
  dead-letters the whole batch with its reason too: the trigger checkpoints whatever the function
  does, so every event ends scored, dead-lettered or spooled, never dropped. An explainer that
  fails only costs the alerts their explanations (``shared.streaming.alerts``);
* the spool is not left behind: each batch first moves what earlier batches spooled into
  ``deadletter`` and deletes the local copy once it is stored.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

from shared.domain import layout
from shared.domain.contract import DatasetContract
from shared.domain.documents.streaming import PendingRange
from shared.domain.errors import FraudOpsError, ModelNotAvailableError
from shared.domain.pseudonym import Pseudonymiser, pseudonymiser
from shared.domain.telemetry import count_scores, instruments, span
from shared.streaming.alerts import AlertSender, build_alerts
from shared.streaming.deadletter import JSONL_TYPE, Spool, dead_letters, jsonl
from shared.streaming.events import StreamEvent, stem
from shared.streaming.ledger import LEDGER_ATTEMPTS, Ledger, LedgerMovedError, PartitionLedgers
from shared.streaming.retry import Output, RetryingStore, StreamStorageError
from shared.streaming.scoring import PARQUET_TYPE, decode, scored_parquet

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.scoring.online import OnlineFeatures
    from shared.scoring.scorer import Scorer
    from shared.streaming.alerts import AlertPublisher

__all__ = ["StreamOutcome", "StreamProcessor", "StreamStorageError", "StreamTotals"]

log = logging.getLogger(__name__)

OUTPUTS: Final = (layout.SCORED, layout.ALERTS, layout.DEADLETTER)  # a processed batch's outputs, by container


@dataclass(frozen=True)
class StreamOutcome:
    """What happened to one batch: every event is scored or dead-lettered (``scored + deadlettered == events``)."""

    events: int
    scored: int
    alerts: int
    deadlettered: int
    status: Literal["empty", "processed", "redelivered", "deadlettered"]
    reason: str | None = None
    outputs: dict[str, str | None] = field(default_factory=dict)
    already_done: list[str] = field(default_factory=list)
    deadletter: str | None = None
    stages_ms: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class StreamTotals:
    """What one worker processed since it was built (the local replay reports the difference)."""

    batches: int = 0
    events: int = 0
    scored: int = 0
    alerts: int = 0
    deadlettered: int = 0


DISPOSITIONS: Final = tuple(f.name for f in dataclasses.fields(StreamTotals) if f.name not in {"batches", "events"})
"""How an event can end, as ``StreamOutcome``, ``StreamTotals`` and the ``outcome`` of the events metric name it."""


class StreamProcessor:
    """Processes batches of one hub with one scorer; built once per worker process."""

    def __init__(
        self,
        store: BlobStore,
        scorer: Scorer,
        contract: DatasetContract,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.2,
        spool_dir: Path,
        publisher: AlertPublisher | None = None,
        top_k: int = 5,
        pseudonymise: Pseudonymiser | None = None,
        behaviour: OnlineFeatures | None = None,
    ) -> None:
        self.store, self.scorer, self.contract = store, scorer, contract
        self.behaviour = behaviour  # the online features, for a contract that declares them
        self.pseudonymise = pseudonymise or pseudonymiser(None)  # never the clear id: the development key at worst
        self.attempts, self.backoff_seconds = attempts, backoff_seconds
        self.spool_dir, self.publisher, self.top_k = spool_dir, publisher, top_k
        self.storage = RetryingStore(store, attempts=attempts, backoff_seconds=backoff_seconds)
        self.ledgers = PartitionLedgers(self.storage)
        self.alerts = AlertSender(self.storage, publisher)
        self.personal = contract.personal_names
        self.spool = Spool(spool_dir, pseudonymise=self.pseudonymise, personal=self.personal)
        self.totals = StreamTotals()

    # ---- the batch -------------------------------------------------------------------------
    def process(self, events: Sequence[StreamEvent]) -> StreamOutcome:
        """Process ``events`` (one partition, as the trigger delivers them); never raises for bad data."""
        started = time.perf_counter()
        if not events:
            return StreamOutcome(events=0, scored=0, alerts=0, deadlettered=0, status="empty")
        with span("stream.batch", partition=events[0].partition, events=len(events)) as batch_span:
            summary = self._process_batch(events)
            batch_span.set_attribute("status", summary.status)
        summary = dataclasses.replace(summary, seconds=round(time.perf_counter() - started, 4))
        self.totals.batches += 1
        self.totals.events += summary.events
        m = instruments()
        for outcome in DISPOSITIONS:
            count = getattr(summary, outcome)
            setattr(self.totals, outcome, getattr(self.totals, outcome) + count)
            if count:
                m.stream_events.add(count, {"outcome": outcome})
        return summary

    def replay_spool(self) -> int:
        """Move every spooled batch into ``deadletter`` (create-only) and delete it locally; how many moved.

        Runs before each batch, so a spool never outlives the outage that made it; a batch that still cannot
        be stored stays spooled for the next attempt.
        """
        return self.spool.replay(self.store, settle=lambda partition: self._settle(partition))

    def _settle(self, partition: str) -> Ledger:
        """The partition's ledger, once the range a crashed attempt announced is finished or undone."""
        return self.ledgers.settle(
            partition, self.ledgers.read(partition), complete=lambda pending: self.alerts.settled(partition, pending)
        )

    def _process_batch(self, events: Sequence[StreamEvent]) -> StreamOutcome:
        self.replay_spool()
        summary: StreamOutcome | None = None
        for _ in range(LEDGER_ATTEMPTS):
            try:
                summary = self._process(events)
                break
            except LedgerMovedError:
                continue  # another instance committed on this partition meanwhile: read its progress again
            except Exception as exc:  # the boundary: the trigger checkpoints anyway, so nothing may escape unrecorded
                summary = self._fail(events, exc)
                break
        if summary is None:
            summary = self._fail(events, LedgerMovedError("the partition's progress kept changing under this batch"))
        return summary

    def _fail(self, events: Sequence[StreamEvent], exc: Exception) -> StreamOutcome:
        """Dead-letter the batch's uncommitted events with the reason (through the ledger), or spool them."""
        batch = stem(events)[1]
        reason = exc.reason if isinstance(exc, FraudOpsError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, StreamStorageError | ModelNotAvailableError | LedgerMovedError):
            log.exception("batch %s failed unexpectedly", batch, exc_info=exc)
        log.error("batch %s could not be processed (%s); dead-lettering it", batch, reason)
        reason = reason[:1000]
        where: str | None
        try:
            where, count = self._deadletter_committed(events, reason)
        except Exception as failure:  # storage is unreachable: spool what this worker does not know to be committed
            known = self.ledgers.known_done(events[0].partition)
            uncommitted = [e for e in events if e.sequence_number > known]
            if not uncommitted:
                return StreamOutcome(
                    events=len(events), scored=0, alerts=0, deadlettered=0, status="redelivered", reason=reason
                )
            where, count = self.spool.keep(uncommitted, *stem(uncommitted), reason, failure), len(uncommitted)
        return StreamOutcome(
            events=len(events),
            scored=0,
            alerts=0,
            deadlettered=count,
            status="deadlettered",
            reason=reason,
            deadletter=where,
        )

    def _deadletter_committed(self, events: Sequence[StreamEvent], reason: str) -> tuple[str | None, int]:
        """Dead-letter the batch's uncommitted events as one range through the ledger; (where, how many)."""
        partition = events[0].partition
        for _ in range(LEDGER_ATTEMPTS):
            try:
                ledger = self._settle(partition)
                fresh = [e for e in events if e.sequence_number > ledger.done]
                if not fresh:
                    return None, 0
                path = layout.stream_failed_batch(*stem(fresh))
                intent = PendingRange(
                    first=fresh[0].sequence_number, last=fresh[-1].sequence_number, outputs={layout.DEADLETTER: path}
                )
                ledger = self.ledgers.write(partition, ledger, done=ledger.done, pending=intent)
                letters = dead_letters([(e, reason) for e in fresh], self.pseudonymise, personal=self.personal)
                self.storage.put_new(layout.DEADLETTER, Output(path, letters, JSONL_TYPE))
                self.ledgers.write(partition, ledger, done=fresh[-1].sequence_number, pending=None)
                return layout.display(layout.DEADLETTER, path), len(fresh)
            except LedgerMovedError:
                continue
        raise LedgerMovedError(f"the progress of partition {partition} kept changing")

    def _with_behaviour(
        self, rows: list[dict[str, Any]], x: np.ndarray, times: np.ndarray | None
    ) -> tuple[np.ndarray, list[str], tuple[dict[str, list[str | None]], dict[str, np.ndarray]]]:
        """The batch's behavioural features after its own columns, placed in the online store in the batch's
        order (a redelivered event is not placed twice: the store knows the ids of its entities' recent
        transactions), and each event's status."""
        from shared.domain.history import history_columns
        from shared.scoring.online import events_of, recorded_history

        assert self.behaviour is not None
        contract = self.contract
        tid = contract.transaction_id or ""
        if times is None:
            name = contract.time_column.name if contract.time_column else ""
            times = np.array([r.get(name) for r in rows], dtype=np.float64)
        columns = {name: [r.get(name) for r in rows] for name in history_columns(contract)}
        events = events_of(contract, columns, [r[tid] for r in rows], times)
        served = self.behaviour.serve(events)
        out = np.empty((x.shape[0], x.shape[1] + served.vectors.shape[1]), dtype=np.float32)
        out[:, : x.shape[1]], out[:, x.shape[1] :] = x, served.vectors
        return out, served.status, recorded_history(contract, events)

    def _process(self, events: Sequence[StreamEvent]) -> StreamOutcome:
        partition = events[0].partition
        ledger = self._settle(partition)
        fresh = [e for e in events if e.sequence_number > ledger.done]
        if not fresh:
            log.info("batch %s: every event is already committed (a redelivery)", stem(events)[1])
            return StreamOutcome(
                events=len(events),
                scored=0,
                alerts=0,
                deadlettered=0,
                status="redelivered",
                already_done=[f"partition {partition} up to sequence number {ledger.done}"],
            )
        hour, batch = stem(fresh)
        timings: dict[str, float] = {}
        started = t = time.perf_counter()
        decoded = decode(fresh, self.contract, self.pseudonymise)
        good, rows, x = decoded.good, decoded.rows, decoded.x
        timings["decode_validate"] = time.perf_counter() - t
        writes: dict[str, Output] = {}
        alerts: list[dict[str, Any]] = []
        flagged = np.empty(0, dtype=np.int64)
        statuses: list[str] | None = None
        history: tuple[dict[str, list[str | None]], dict[str, np.ndarray]] | None = None
        if good and x is not None and self.behaviour is not None:
            t = time.perf_counter()
            x, statuses, history = self._with_behaviour(rows, x, decoded.times)
            timings["behaviour"] = time.perf_counter() - t
        if good and x is not None:
            t = time.perf_counter()
            model = self.scorer.current()
            x = model.encode(x, decoded.categories)  # categorical columns in the model's own codes
            probs = model.predict_proba(x)
            timings["score"] = time.perf_counter() - t
            t = time.perf_counter()
            archive = scored_parquet(
                good,
                rows,
                x,
                probs,
                model,
                self.contract,
                batch=batch,
                latency_ms=(t - started) * 1000,
                categories=decoded.categories,
                times=decoded.times,
                behaviour=statuses,
                history=history,
            )
            writes[layout.SCORED] = Output(layout.stream_scored(hour, batch), archive, PARQUET_TYPE)
            count_scores(probs, model.threshold, source="stream", model_version=model.version)
            flagged = np.flatnonzero(probs >= model.threshold)
            if flagged.size:
                alerts = build_alerts(
                    self.scorer.explainers,
                    model,
                    good,
                    rows,
                    x,
                    probs,
                    flagged,
                    top_k=self.top_k,
                    contract=self.contract,
                )
                writes[layout.ALERTS] = Output(layout.stream_alerts(hour, batch), jsonl(alerts), JSONL_TYPE)
            timings["encode"] = time.perf_counter() - t
        if decoded.dead:
            letters = dead_letters(decoded.dead, self.pseudonymise, personal=self.personal)
            writes[layout.DEADLETTER] = Output(layout.stream_deadletter(hour, batch), letters, JSONL_TYPE)
        t = time.perf_counter()
        first, last = fresh[0].sequence_number, fresh[-1].sequence_number
        intent = PendingRange(first=first, last=last, outputs={c: w.name for c, w in writes.items()})
        ledger = self.ledgers.write(partition, ledger, done=ledger.done, pending=intent)
        self.storage.put_all(writes)
        unsent = self.alerts.publish(alerts, good, flagged)
        self.alerts.uncommitted.add((partition, first, last))  # if the commit fails, settling must not resend
        if unsent:
            letters = dead_letters(unsent, self.pseudonymise, personal=self.personal)
            self.storage.put_new(
                layout.DEADLETTER, Output(layout.stream_unsent_alerts(hour, batch), letters, JSONL_TYPE)
            )
        self.ledgers.write(partition, ledger, done=last, pending=None)
        self.alerts.uncommitted.discard((partition, first, last))
        timings["write"] = time.perf_counter() - t
        skipped = len(events) - len(fresh)
        if skipped:
            log.info("batch %s: %d events were already committed (a redelivery); skipped", batch, skipped)
        return StreamOutcome(
            events=len(events),
            scored=len(good),
            alerts=len(alerts),
            deadlettered=len(decoded.dead),
            status="processed",
            outputs={c: layout.display(c, writes[c].name) if c in writes else None for c in OUTPUTS},
            already_done=[f"{skipped} events up to sequence number {first - 1}"] if skipped else [],
            stages_ms={k: round(v * 1000, 2) for k, v in timings.items()},
        )
