"""Score one batch of stream events: decode, validate, score in one call, archive, alert, dead-letter.

Delivery is at least once and the trigger checkpoints even when the function throws, so:

* every output's name comes from the batch's partition and sequence numbers and is written
  create-only: a redelivered batch finds its outputs and counts them as done (no duplicates);
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
import io
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
from shared.domain.errors import BlobExistsError, FraudOpsError, ModelNotAvailableError
from shared.domain.rows import matrix_from_rows
from shared.streaming.events import StreamEvent

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.scoring.scorer import Scorer
    from shared.streaming.alerts import AlertPublisher

log = logging.getLogger(__name__)

SPOOL_SEPARATOR = "__"  # a spooled file's name is its dead-letter path with "/" replaced by this


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
    ) -> None:
        self.store, self.scorer, self.contract = store, scorer, contract
        self.attempts, self.backoff_seconds = attempts, backoff_seconds
        self.spool_dir, self.publisher, self.top_k = spool_dir, publisher, top_k
        self._executor: ThreadPoolExecutor | None = None
        self.totals = {"batches": 0, "events": 0, "scored": 0, "alerts": 0, "deadlettered": 0}

    # ---- the batch -------------------------------------------------------------------------
    def process(self, events: Sequence[StreamEvent]) -> StreamOutcome:
        """Process ``events`` (one partition, as the trigger delivers them); never raises for bad data."""
        started = time.perf_counter()
        if not events:
            return StreamOutcome(events=0, scored=0, alerts=0, deadlettered=0, status="empty")
        stem = _stem(events)
        self.replay_spool()
        try:
            summary = self._process(events, stem)
        except Exception as exc:  # the boundary: the trigger checkpoints anyway, so nothing may escape unrecorded
            reason = exc.reason if isinstance(exc, FraudOpsError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, StreamStorageError | ModelNotAvailableError):
                log.exception("batch %s failed unexpectedly", stem[1])
            log.error(
                "batch %s could not be processed (%s); dead-lettering all %d events", stem[1], reason, len(events)
            )
            where = self._deadletter_whole(events, stem, reason[:1000])
            summary = StreamOutcome(
                events=len(events),
                scored=0,
                alerts=0,
                deadlettered=len(events),
                status="deadlettered",
                reason=reason,
                deadletter=where,
            )
        summary = dataclasses.replace(summary, seconds=round(time.perf_counter() - started, 4))
        self.totals["batches"] += 1
        for key in ("events", "scored", "alerts", "deadlettered"):
            self.totals[key] += getattr(summary, key)
        return summary

    def _process(self, events: Sequence[StreamEvent], stem: tuple[str, str]) -> StreamOutcome:
        prefix, name = stem
        timings: dict[str, float] = {}
        t = time.perf_counter()
        good, rows, x, dead = self._decode(events)
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
                _scored_parquet(good, rows, probs, model.threshold, model.version),
                "application/octet-stream",
            )
            flagged = np.flatnonzero(probs >= model.threshold)
            if flagged.size:
                alerts = self._alerts(good, rows, x, probs, flagged, model)
                writes["alerts"] = (f"{prefix}/{name}.jsonl", _jsonl(alerts), "application/x-ndjson")
            timings["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        created = self._put_all(writes)
        if created.get("alerts"):  # newly written: this delivery sends them; a redelivery does not resend
            dead += self._publish(alerts, good, flagged)
        if dead:
            writes["deadletter"] = (
                f"{prefix}/{name}.jsonl",
                _jsonl([_dead_doc(e, r) for e, r in dead]),
                "application/x-ndjson",
            )
            created.update(self._put_all({"deadletter": writes["deadletter"]}))
        timings["write"] = time.perf_counter() - t
        outputs = {c: f"{c}/{writes[c][0]}" if created.get(c) else None for c in ("scored", "alerts", "deadletter")}
        done = [f"{c}/{writes[c][0]}" for c in writes if not created[c]]
        if done:
            log.info("batch %s: %s already written (a redelivery); counted as done", name, ", ".join(done))
        return StreamOutcome(
            events=len(events),
            scored=len(good),
            alerts=len(alerts),
            deadlettered=len(dead),
            status="redelivered" if done and not any(outputs.values()) else "processed",
            outputs=outputs,
            already_done=done,
            stages_ms={k: round(v * 1000, 2) for k, v in timings.items()},
        )

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
        from tenacity import RetryError, Retrying, retry_if_not_exception_type, stop_after_attempt, wait_exponential

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            reraise=False,
            wait=wait_exponential(multiplier=self.backoff_seconds, max=self.backoff_seconds * 8),
            retry=retry_if_not_exception_type(FraudOpsError),
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

    def _deadletter_whole(self, events: Sequence[StreamEvent], stem: tuple[str, str], reason: str) -> str:
        prefix, name = stem
        body = _jsonl([_dead_doc(e, reason) for e in events])
        path = f"{prefix}/{name}-batch.jsonl"
        try:
            self._put("deadletter", path, body, "application/x-ndjson")
            return f"deadletter/{path}"
        except StreamStorageError as exc:
            spooled = self.spool_dir / path.replace("/", SPOOL_SEPARATOR)
            spooled.parent.mkdir(parents=True, exist_ok=True)
            partial = spooled.with_suffix(".partial")
            partial.write_bytes(body)
            partial.replace(spooled)  # whole or absent: a crash mid-write leaves no half file to replay
            log.critical("storage unreachable (%s); batch %s spooled to %s for replay", exc.reason, name, spooled)
            return str(spooled)

    def replay_spool(self) -> int:
        """Move every spooled batch into ``deadletter/`` (create-only) and delete it locally; how many moved.

        Runs before each batch, so a spool never outlives the outage that made it; a batch that still cannot
        be stored stays spooled for the next attempt.
        """
        if not self.spool_dir.is_dir():
            return 0
        moved = 0
        for spooled in sorted(self.spool_dir.glob(f"*{SPOOL_SEPARATOR}*.jsonl")):
            path = spooled.name.replace(SPOOL_SEPARATOR, "/")
            try:
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
    good: list[StreamEvent], rows: list[dict[str, Any]], probs: np.ndarray, threshold: float, version: str
) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "transaction_id": pa.array([r["transaction_id"] for r in rows], pa.string()),
            "customer_id": pa.array([r.get("customer_id") for r in rows], pa.string()),
            "fraud_probability": pa.array(probs, pa.float64()),
            "is_fraud": pa.array(probs >= threshold),
            "model_version": pa.array([version] * len(rows), pa.string()),
            "enqueued_time": pa.array([e.enqueued_time for e in good], pa.timestamp("us", tz="UTC")),
            "partition": pa.array([e.partition for e in good], pa.string()),
            "sequence_number": pa.array([e.sequence_number for e in good], pa.int64()),
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, compression="zstd")
    return out.getvalue()


def _dead_doc(event: StreamEvent, reason: str) -> dict[str, Any]:
    try:
        body, encoding = event.body.decode("utf-8"), "utf-8"
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


def _jsonl(docs: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(d, default=str).encode() + b"\n" for d in docs)
