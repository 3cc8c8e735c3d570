"""Score one batch of stream events: decode, validate, score in one call, archive, alert, dead-letter.

Delivery is at least once, a redelivery may be cut into different batches, and the trigger
checkpoints even when the function throws, so:

* each partition has a small ledger (``scored/_progress/partition=<p>.json``, ETag-conditional):
  the highest sequence number whose outputs are committed, and the intent of the range being
  written (its outputs' names). A batch first settles an intent a crashed attempt left (all its
  outputs there: its alerts are sent and it is committed; some missing: they are deleted and the
  range is done again), then skips every event already committed, however the redelivery is cut,
  and writes each remaining event into exactly one output, create-only;
* bad data never raises: each event that cannot be processed goes to ``deadletter/`` with its
  original body, partition, sequence number, enqueued time and reason;
* a storage failure is retried with bounded exponential backoff (tenacity); if it persists, the
  whole batch is dead-lettered with the reason, and if even that cannot reach storage it is
  spooled to a local folder and logged, before the function returns;
* any other failure (a model refresh that raises an Azure SDK error, a corrupt model, a bug)
  dead-letters the whole batch with its reason too: the trigger checkpoints whatever the function
  does, so every event ends scored, dead-lettered or spooled, never dropped. An explainer that
  fails only costs the alerts their explanations;
* the spool is not left behind: each batch first moves what earlier batches spooled into
  ``deadletter/`` (create-only, so a file moved twice is still one), and deletes the local copy
  once it is stored.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from shared.domain.contract import DatasetContract
from shared.domain.errors import BlobExistsError, ConcurrentUpdateError, FraudOpsError, ModelNotAvailableError
from shared.domain.pseudonym import Pseudonymiser, pseudonymiser
from shared.domain.rows import matrix_from_rows
from shared.domain.telemetry import count_scores, instruments, span
from shared.streaming.events import StreamEvent

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.scoring.scorer import Scorer
    from shared.streaming.alerts import AlertPublisher

log = logging.getLogger(__name__)

SPOOL_SEPARATOR = "__"  # a spooled file's name is its dead-letter path with "/" replaced by this
LEDGER_CONTAINER, ALERTS = "scored", "alerts"
LEDGER_ATTEMPTS = 5


def _ledger_name(partition: str) -> str:
    return f"_progress/partition={partition}.json"


class LedgerMovedError(FraudOpsError):
    """Another instance committed on this partition since its ledger was read."""


@dataclass(frozen=True)
class Ledger:
    """A partition's progress: the highest committed sequence number, and the range being written, if any."""

    done: int
    pending: dict[str, Any] | None
    etag: str | None


class StreamStorageError(FraudOpsError):
    """Storage stayed unavailable through every retry."""


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
    ) -> None:
        self.store, self.scorer, self.contract = store, scorer, contract
        self.pseudonymise = pseudonymise or pseudonymiser(None)  # never the clear id: the development key at worst
        self.attempts, self.backoff_seconds = attempts, backoff_seconds
        self.spool_dir, self.publisher, self.top_k = spool_dir, publisher, top_k
        self._executor: ThreadPoolExecutor | None = None
        self._sent: set[tuple[str, int, int]] = set()  # ranges whose alerts this worker sent, not yet committed
        self._known_done: dict[str, int] = {}  # the committed sequence number this worker last saw, per partition
        # each partition's ledger as this worker last read or wrote it: the partition's owner writes it next,
        # conditionally, so it need not read it again; a conditional write that fails drops it
        self._ledgers: dict[str, Ledger] = {}
        self.totals = {"batches": 0, "events": 0, "scored": 0, "alerts": 0, "deadlettered": 0}

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
        self.totals["batches"] += 1
        for key in ("events", "scored", "alerts", "deadlettered"):
            self.totals[key] += getattr(summary, key)
        m = instruments()
        for outcome in ("scored", "alerts", "deadlettered"):
            if getattr(summary, outcome):
                m.stream_events.add(getattr(summary, outcome), {"outcome": outcome})
        return summary

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
        stem = _stem(events)
        reason = exc.reason if isinstance(exc, FraudOpsError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, StreamStorageError | ModelNotAvailableError | LedgerMovedError):
            log.exception("batch %s failed unexpectedly", stem[1], exc_info=exc)
        log.error("batch %s could not be processed (%s); dead-lettering it", stem[1], reason)
        reason = reason[:1000]
        where: str | None
        try:
            where, count = self._deadletter_committed(events, reason)
        except Exception as failure:  # storage is unreachable: spool what this worker does not know to be committed
            known = self._known_done.get(events[0].partition, -1)
            uncommitted = [e for e in events if e.sequence_number > known]
            if not uncommitted:
                return StreamOutcome(
                    events=len(events), scored=0, alerts=0, deadlettered=0, status="redelivered", reason=reason
                )
            where, count = self._spool(uncommitted, _stem(uncommitted), reason, failure), len(uncommitted)
        return StreamOutcome(
            events=len(events),
            scored=0,
            alerts=0,
            deadlettered=count,
            status="deadlettered",
            reason=reason,
            deadletter=where,
        )

    def _process(self, events: Sequence[StreamEvent]) -> StreamOutcome:
        partition = events[0].partition
        ledger = self._settle(partition, self._read_ledger(partition))
        fresh = [e for e in events if e.sequence_number > ledger.done]
        if not fresh:
            log.info("batch %s: every event is already committed (a redelivery)", _stem(events)[1])
            return StreamOutcome(
                events=len(events),
                scored=0,
                alerts=0,
                deadlettered=0,
                status="redelivered",
                already_done=[f"partition {partition} up to sequence number {ledger.done}"],
            )
        prefix, name = _stem(fresh)
        timings: dict[str, float] = {}
        started = t = time.perf_counter()
        good, rows, x, dead = self._decode(fresh)
        timings["decode_validate"] = time.perf_counter() - t
        writes: dict[str, tuple[str, bytes, str]] = {}
        alerts: list[dict[str, Any]] = []
        flagged = np.empty(0, dtype=np.int64)
        if good and x is not None:
            t = time.perf_counter()
            model = self.scorer.current()
            probs = model.predict_proba(x)
            timings["score"] = time.perf_counter() - t
            t = time.perf_counter()
            writes["scored"] = (
                f"{prefix}/{name}.parquet",
                _scored_parquet(
                    good, rows, x, probs, model, self.contract, batch=name, latency_ms=(t - started) * 1000
                ),
                "application/vnd.apache.parquet",
            )
            count_scores(probs, model.threshold, source="stream", model_version=model.version)
            flagged = np.flatnonzero(probs >= model.threshold)
            if flagged.size:
                alerts = self._alerts(good, rows, x, probs, flagged, model)
                writes["alerts"] = (f"{prefix}/{name}.jsonl", _jsonl(alerts), "application/x-ndjson")
            timings["encode"] = time.perf_counter() - t
        if dead:
            writes["deadletter"] = (
                f"{prefix}/{name}.jsonl",
                _jsonl([_dead_doc(e, r, self.pseudonymise) for e, r in dead]),
                "application/x-ndjson",
            )
        t = time.perf_counter()
        last = fresh[-1].sequence_number
        intent = {"first": fresh[0].sequence_number, "last": last, "outputs": {c: w[0] for c, w in writes.items()}}
        ledger = self._write_ledger(partition, ledger, done=ledger.done, pending=intent)
        self._put_all(writes)
        unsent = self._publish(alerts, good, flagged)
        self._sent.add((partition, fresh[0].sequence_number, last))  # if the commit fails, settling must not resend
        if unsent:
            self._put(
                "deadletter",
                f"{prefix}/{name}-unsent-alerts.jsonl",
                _jsonl([_dead_doc(e, r, self.pseudonymise) for e, r in unsent]),
                "application/x-ndjson",
            )
        self._write_ledger(partition, ledger, done=last, pending=None)
        self._sent.discard((partition, fresh[0].sequence_number, last))
        timings["write"] = time.perf_counter() - t
        skipped = len(events) - len(fresh)
        if skipped:
            log.info("batch %s: %d events were already committed (a redelivery); skipped", name, skipped)
        return StreamOutcome(
            events=len(events),
            scored=len(good),
            alerts=len(alerts),
            deadlettered=len(dead),
            status="processed",
            outputs={c: f"{c}/{writes[c][0]}" if c in writes else None for c in ("scored", "alerts", "deadletter")},
            already_done=[f"{skipped} events up to sequence number {fresh[0].sequence_number - 1}"] if skipped else [],
            stages_ms={k: round(v * 1000, 2) for k, v in timings.items()},
        )

    # ---- the partition's ledger ------------------------------------------------------------------
    def _read_ledger(self, partition: str) -> Ledger:
        from shared.domain.errors import BlobNotFoundError

        cached = self._ledgers.get(partition)
        if cached is not None:
            return cached
        name = _ledger_name(partition)
        try:
            data, etag = self._retry(lambda: self.store.get_bytes(LEDGER_CONTAINER, name), what=f"scored/{name}")
        except BlobNotFoundError:
            return Ledger(done=-1, pending=None, etag=None)
        doc = json.loads(data)
        self._known_done[partition] = int(doc["done"])
        self._ledgers[partition] = Ledger(done=int(doc["done"]), pending=doc.get("pending"), etag=etag)
        return self._ledgers[partition]

    def _write_ledger(self, partition: str, ledger: Ledger, *, done: int, pending: dict[str, Any] | None) -> Ledger:
        """The conditional write that commits (or announces) a range; ``LedgerMovedError`` if someone else did."""
        name = _ledger_name(partition)
        body = json.dumps(
            {"partition": partition, "done": done, "pending": pending, "updated_at": datetime.now(UTC).isoformat()}
        ).encode()

        def write() -> str:
            if ledger.etag is None:
                return self.store.put_bytes(LEDGER_CONTAINER, name, body, overwrite=False)
            return self.store.put_bytes(LEDGER_CONTAINER, name, body, if_match=ledger.etag)

        self._ledgers.pop(partition, None)  # until this write is known to have landed, read it from storage
        try:
            etag = self._retry(write, what=f"scored/{name}")
        except (ConcurrentUpdateError, BlobExistsError):
            raise LedgerMovedError(f"the progress of partition {partition} changed meanwhile") from None
        self._known_done[partition] = done
        self._ledgers[partition] = Ledger(done=done, pending=pending, etag=str(etag))
        return self._ledgers[partition]

    def _settle(self, partition: str, ledger: Ledger) -> Ledger:
        """Finish or undo the range a crashed attempt announced, so no event is written twice."""
        pending = ledger.pending
        if not pending:
            return ledger
        outputs: dict[str, str] = pending["outputs"]
        present = {c: self._exists(c, n) for c, n in outputs.items()}
        if all(present.values()):  # every output was written: send its alerts (from the archive) and commit
            sent_here = (partition, int(pending["first"]), int(pending["last"])) in self._sent
            if "alerts" in outputs and not sent_here:  # a crashed worker may have sent them: at least once
                self._resend(outputs["alerts"])
            log.warning(
                "partition %s: committing range %s-%s a crashed attempt wrote",
                partition,
                pending["first"],
                pending["last"],
            )
            return self._write_ledger(partition, ledger, done=max(ledger.done, int(pending["last"])), pending=None)
        for container, name in outputs.items():  # some were written: delete them and do the range again
            if present[container]:
                self._delete(container, name)
        log.warning(
            "partition %s: undid range %s-%s a crashed attempt left half written",
            partition,
            pending["first"],
            pending["last"],
        )
        return self._write_ledger(partition, ledger, done=ledger.done, pending=None)

    def _resend(self, alerts_name: str) -> None:
        """Send a settled range's alerts from their archive; if the hub refuses, record them as not sent."""
        docs = [json.loads(line) for line in self._read(ALERTS, alerts_name).splitlines()]
        if self.publisher is None or not docs:
            return
        publisher = self.publisher
        try:
            self._retry(lambda: publisher.send(docs), what="alerts hub")
        except StreamStorageError as exc:
            unsent = [
                {**d, "reason": f"alert not sent to the alerts hub ({exc.reason}); it is in alerts/"} for d in docs
            ]
            self._put(
                "deadletter",
                alerts_name.removesuffix(".jsonl") + "-unsent-alerts.jsonl",
                _jsonl(unsent),
                "application/x-ndjson",
            )

    def _exists(self, container: str, name: str) -> bool:
        from shared.domain.errors import BlobNotFoundError

        try:
            self._retry(lambda: self.store.info(container, name), what=f"{container}/{name}")
        except BlobNotFoundError:
            return False
        return True

    def _delete(self, container: str, name: str) -> None:
        self._retry(lambda: self.store.delete(container, name), what=f"{container}/{name}")

    def _read(self, container: str, name: str) -> bytes:
        data, _ = self._retry(lambda: self.store.get_bytes(container, name), what=f"{container}/{name}")
        return bytes(data)

    def _deadletter_committed(self, events: Sequence[StreamEvent], reason: str) -> tuple[str | None, int]:
        """Dead-letter the batch's uncommitted events as one range through the ledger; (where, how many)."""
        partition = events[0].partition
        for _ in range(LEDGER_ATTEMPTS):
            try:
                ledger = self._settle(partition, self._read_ledger(partition))
                fresh = [e for e in events if e.sequence_number > ledger.done]
                if not fresh:
                    return None, 0
                prefix, name = _stem(fresh)
                path = f"{prefix}/{name}-batch.jsonl"
                intent = {
                    "first": fresh[0].sequence_number,
                    "last": fresh[-1].sequence_number,
                    "outputs": {"deadletter": path},
                }
                ledger = self._write_ledger(partition, ledger, done=ledger.done, pending=intent)
                self._put(
                    "deadletter",
                    path,
                    _jsonl([_dead_doc(e, reason, self.pseudonymise) for e in fresh]),
                    "application/x-ndjson",
                )
                self._write_ledger(partition, ledger, done=fresh[-1].sequence_number, pending=None)
                return f"deadletter/{path}", len(fresh)
            except LedgerMovedError:
                continue
        raise LedgerMovedError(f"the progress of partition {partition} kept changing")

    def _put_all(self, writes: dict[str, tuple[str, bytes, str]]) -> dict[str, bool]:
        """Create-only writes side by side (each retried); which were created; raises if any failed for good."""
        if len(writes) <= 1:
            return {c: self._put(c, path, data, ctype) for c, (path, data, ctype) in writes.items()}
        futures = {c: self._pool().submit(self._put, c, path, data, ctype) for c, (path, data, ctype) in writes.items()}
        created, failure = {}, None
        for container, future in futures.items():
            try:
                created[container] = future.result()
            except StreamStorageError as exc:
                failure = failure or exc
        if failure:
            raise failure
        return created

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=3, thread_name_prefix="stream-write")
        return self._executor

    # ---- decoding ------------------------------------------------------------------------------
    def _decode(
        self, events: Sequence[StreamEvent]
    ) -> tuple[list[StreamEvent], list[dict[str, Any]], np.ndarray | None, list[tuple[StreamEvent, str]]]:
        """Valid events with their transaction dicts and feature matrix, and each invalid event with its reason."""
        import orjson

        good: list[StreamEvent] = []
        rows: list[dict[str, Any]] = []
        dead: list[tuple[StreamEvent, str]] = []
        for event in events:
            try:
                doc = orjson.loads(event.body)
            except orjson.JSONDecodeError as exc:
                dead.append((event, f"body is not JSON ({exc})"))
                continue
            if type(doc) is not dict:
                dead.append((event, "body is not a JSON object (one transaction per event)"))
            elif not isinstance(doc.get("transaction_id"), str) or not doc["transaction_id"]:
                dead.append((event, "transaction_id is missing or not a non-empty string"))
            else:
                if doc.get("customer_id") is not None:  # at the edge: the clear id goes no further
                    doc["customer_id"] = self.pseudonymise(str(doc["customer_id"]))
                good.append(event)
                rows.append(doc)
        x = matrix_from_rows(rows, self.contract)[0] if rows else None
        if rows and x is None:  # someone is off: find who, say why
            reasons = _row_reasons(rows, self.contract)
            keep = [i for i in range(len(rows)) if i not in reasons]
            dead += [(good[i], reasons[i]) for i in sorted(reasons)]
            good, rows = [good[i] for i in keep], [rows[i] for i in keep]
            x = matrix_from_rows(rows, self.contract)[0] if rows else None
        return good, rows, x, dead

    # ---- alerts -------------------------------------------------------------------------------
    def _alerts(
        self,
        good: list[StreamEvent],
        rows: list[dict[str, Any]],
        x: np.ndarray,
        probs: np.ndarray,
        flagged: np.ndarray,
        model: Any,
    ) -> list[dict[str, Any]]:
        from shared.scoring.explain import CannotExplainError

        explained: list[dict[str, Any] | None]
        try:
            explained = list(
                self.scorer.explainers.get(model.version, list(model.feature_names)).explain(
                    x[flagged], top_k=self.top_k
                )
            )
        except CannotExplainError as exc:
            log.warning("alerts without explanations: %s", exc.reason)
            explained = [None] * flagged.size
        except Exception:  # LightGBM, storage or integrity errors while loading the explainer: alert anyway
            log.exception("alerts without explanations: the explainer for %s failed", model.version)
            explained = [None] * flagged.size
        return [
            {
                "transaction_id": rows[i]["transaction_id"],
                "customer_id": rows[i].get("customer_id"),
                "fraud_probability": float(probs[i]),
                "threshold": model.threshold,
                "model_version": model.version,
                "alert_id": f"{good[i].partition}-{good[i].sequence_number}",  # one per event: for deduplication
                "partition": good[i].partition,
                "sequence_number": good[i].sequence_number,
                "enqueued_time": good[i].enqueued_time.isoformat(),
                "top_features": explanation["contributions"] if explanation else None,
            }
            for i, explanation in zip(flagged.tolist(), explained, strict=True)
        ]

    def _publish(
        self, docs: list[dict[str, Any]], good: list[StreamEvent], flagged: np.ndarray
    ) -> list[tuple[StreamEvent, str]]:
        """Send alerts to the alerts hub; what cannot be sent is dead-lettered (the Blob copy is already kept)."""
        if self.publisher is None or not docs:
            return []
        publisher = self.publisher
        try:
            self._retry(lambda: publisher.send(docs), what="alerts hub")
        except StreamStorageError as exc:
            return [
                (good[i], f"alert not sent to the alerts hub ({exc.reason}); it is in alerts/")
                for i in flagged.tolist()
            ]
        return []

    # ---- writing --------------------------------------------------------------------------------
    def _put(self, container: str, name: str, data: bytes, content_type: str) -> bool:
        """Create-only with retries; ``False`` when it already exists (a redelivery)."""

        def write() -> bool:
            try:
                self.store.put_bytes(container, name, data, overwrite=False, content_type=content_type)
            except BlobExistsError:
                return False
            return True

        return bool(self._retry(write, what=f"{container}/{name}"))

    def _retry(self, fn: Callable[[], Any], *, what: str) -> Any:
        from tenacity import RetryError, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            reraise=False,
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.backoff_seconds * 8),
            # transient errors only: a domain answer (exists, changed, absent) is final, and a BaseException
            # (the worker stopping) is not an error to retry
            retry=retry_if_exception(lambda e: isinstance(e, Exception) and not isinstance(e, FraudOpsError)),
            before_sleep=lambda state: log.warning(
                "writing %s failed (attempt %d): %s; retrying",
                what,
                state.attempt_number,
                state.outcome.exception() if state.outcome else None,
            ),
        )
        try:
            return retrying(fn)
        except RetryError as exc:
            cause = exc.last_attempt.exception()
            raise StreamStorageError(f"{what} failed {self.attempts} times: {type(cause).__name__}: {cause}") from cause

    def _spool(self, events: Sequence[StreamEvent], stem: tuple[str, str], reason: str, failure: Exception) -> str:
        """Last resort when storage is unreachable: the batch, whole, to a local file the next batch replays."""
        prefix, name = stem
        spooled = self.spool_dir / f"{prefix}/{name}-batch.jsonl".replace("/", SPOOL_SEPARATOR)
        spooled.parent.mkdir(parents=True, exist_ok=True)
        partial = spooled.with_suffix(".partial")
        partial.write_bytes(_jsonl([_dead_doc(e, reason, self.pseudonymise) for e in events]))
        partial.replace(spooled)  # whole or absent: a crash mid-write leaves no half file to replay
        instruments().spool.set(len(list(self.spool_dir.glob(f"*{SPOOL_SEPARATOR}*.jsonl"))))
        log.critical("storage unreachable (%s); batch %s spooled to %s for replay", failure, name, spooled)
        return str(spooled)

    def replay_spool(self) -> int:
        """Move every spooled batch into ``deadletter/`` (create-only) and delete it locally; how many moved.

        Runs before each batch, so a spool never outlives the outage that made it; a batch that still cannot
        be stored stays spooled for the next attempt.
        """
        if not self.spool_dir.is_dir():
            return 0
        moved = 0
        waiting = sorted(self.spool_dir.glob(f"*{SPOOL_SEPARATOR}*.jsonl"))
        try:
            moved = self._replay(waiting)
        finally:
            instruments().spool.set(len(waiting) - moved)
        return moved

    def _replay(self, waiting: list[Path]) -> int:
        moved = 0
        for spooled in waiting:
            path = spooled.name.replace(SPOOL_SEPARATOR, "/")
            try:
                partition = json.loads(spooled.read_bytes().split(b"\n", 1)[0])["partition"]
                self._settle(partition, self._read_ledger(partition))  # a half-written range of that attempt
                self.store.put_bytes(
                    "deadletter", path, spooled.read_bytes(), overwrite=False, content_type="application/x-ndjson"
                )
            except BlobExistsError:
                pass  # moved before, and the local delete was lost: it is stored once
            except Exception as exc:
                log.warning("spooled batch %s still cannot be stored (%s); keeping it", spooled.name, exc)
                return moved
            spooled.unlink()
            moved += 1
            log.info("replayed spooled batch into deadletter/%s", path)
        return moved


def _stem(events: Sequence[StreamEvent]) -> tuple[str, str]:
    """``date=YYYY-MM-DD/hour=HH`` of the first event and ``<partition>-<first seq>-<last seq>``."""
    first = events[0]
    sequences = [e.sequence_number for e in events]
    when = first.enqueued_time.astimezone(UTC)
    return f"date={when:%Y-%m-%d}/hour={when:%H}", f"{first.partition}-{min(sequences)}-{max(sequences)}"


def _row_reasons(rows: list[dict[str, Any]], contract: DatasetContract) -> dict[int, str]:
    from pydantic import ValidationError

    from shared.domain.transaction_schema import transaction_model

    model = transaction_model(contract)
    reasons: dict[int, str] = {}
    for i, row in enumerate(rows):
        try:
            model.model_validate(row)
        except ValidationError as exc:
            reasons[i] = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
    if not reasons:  # the fast path refused, the model accepts: refuse them all with the same words
        reasons = dict.fromkeys(range(len(rows)), "the transactions could not be read in the contract's columns")
    return reasons


def _scored_parquet(
    good: list[StreamEvent],
    rows: list[dict[str, Any]],
    x: np.ndarray,
    probs: np.ndarray,
    model: Any,
    contract: DatasetContract,
    *,
    batch: str,
    latency_ms: float,
) -> bytes:
    """The batch's archive: the same record as every served prediction, plus where the event came from."""
    import pyarrow as pa

    from shared.scoring.records import Scored, parquet_bytes, prediction_table

    time_name = contract.time_column.name if contract.time_column else None
    times = np.array([r.get(time_name) for r in rows], dtype=np.float64) if time_name else None
    scored = Scored(
        x=x,
        probabilities=probs,
        transaction_ids=[r["transaction_id"] for r in rows],
        customer_ids=[r.get("customer_id") for r in rows],
        times=times,
        model_version=model.version,
        threshold=model.threshold,
        request_id=batch,
        latency_ms=latency_ms,
        source="stream",
    )
    enqueued = [e.enqueued_time for e in good]
    oldest = (scored.scored_at - min(enqueued)).total_seconds()  # one observation a batch: its worst lag
    instruments().stream_lag.record(max(oldest, 0.0), {"partition": good[0].partition})
    extra = {
        "enqueued_time": pa.array(enqueued, pa.timestamp("us", tz="UTC")),
        "partition": pa.array([e.partition for e in good], pa.string()),
        "sequence_number": pa.array([e.sequence_number for e in good], pa.int64()),
    }
    return parquet_bytes(prediction_table(scored, contract.feature_names, extra))


def _dead_doc(event: StreamEvent, reason: str, pseudonymise: Pseudonymiser) -> dict[str, Any]:
    """The dead letter of ``event``: its body as sent, but with a JSON object's ``customer_id`` pseudonymised (a
    body that is not a JSON object cannot be read for one and is kept as it came)."""
    try:
        body, encoding = _pseudonymised_body(event.body, pseudonymise).decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        body, encoding = base64.b64encode(event.body).decode("ascii"), "base64"
    return {
        "reason": reason,
        "partition": event.partition,
        "sequence_number": event.sequence_number,
        "enqueued_time": event.enqueued_time.isoformat(),
        "offset": event.offset,
        "body": body,
        "body_encoding": encoding,
        "deadlettered_at": datetime.now(UTC).isoformat(),
    }


def _pseudonymised_body(body: bytes, pseudonymise: Pseudonymiser) -> bytes:
    import orjson

    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if type(doc) is not dict or doc.get("customer_id") is None:
        return body
    doc["customer_id"] = pseudonymise(str(doc["customer_id"]))
    return orjson.dumps(doc)


def _jsonl(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(d, default=str).encode() + b"\n" for d in docs)
