"""A batch's events as rows to score, and its scored archive: decode, validate against the contract, encode.

Decoding never raises: an event whose body is not one JSON transaction, or whose row breaks the
contract, is set aside with its reason (for ``deadletter``). The customer id is pseudonymised as the
event is decoded: the clear id goes no further. The archive of the scored rows is the same record as
every served prediction, plus where each event came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.rows import matrix_from_rows
from shared.domain.telemetry import instruments
from shared.domain.typed_rows import is_plain, typed_rows
from shared.streaming.events import StreamEvent

if TYPE_CHECKING:
    from shared.domain.contract import DatasetContract
    from shared.domain.pseudonym import Pseudonymiser

PARQUET_TYPE = "application/vnd.apache.parquet"


@dataclass(frozen=True)
class Decoded:
    """The valid events with their transaction dicts and feature matrix, and each invalid event with its reason."""

    good: list[StreamEvent]
    rows: list[dict[str, Any]]
    x: np.ndarray | None
    dead: list[tuple[StreamEvent, str]]
    categories: dict[str, np.ndarray] | None = None  # categorical features as sent (``x`` holds NaN there)
    times: np.ndarray | None = None  # event times in seconds, when the contract's time is a timestamp


def decode(events: list[StreamEvent], contract: DatasetContract, pseudonymise: Pseudonymiser) -> Decoded:
    """Read each event as one transaction of ``contract``; set aside, with the reason, each that is not one."""
    import orjson

    good: list[StreamEvent] = []
    rows: list[dict[str, Any]] = []
    dead: list[tuple[StreamEvent, str]] = []
    tid, personal = contract.transaction_id, contract.personal_names
    if tid is None:  # the exactly-once ledger is keyed by the transaction id
        reason = f"dataset {contract.name}'s contract declares no transaction_id role: the stream cannot score it"
        return Decoded([], [], None, [(event, reason) for event in events])
    for event in events:
        try:
            doc = orjson.loads(event.body)
        except orjson.JSONDecodeError as exc:
            dead.append((event, f"body is not JSON ({exc})"))
            continue
        if type(doc) is not dict:
            dead.append((event, "body is not a JSON object (one transaction per event)"))
        elif not isinstance(doc.get(tid), str) or not doc[tid]:
            dead.append((event, f"{tid} (the transaction id) is missing or not a non-empty string"))
        else:
            for name in personal:  # at the edge: a clear personal value goes no further
                if doc.get(name) is not None:
                    doc[name] = pseudonymise(str(doc[name]))
            good.append(event)
            rows.append(doc)
    if rows and not is_plain(contract):
        return _typed(good, rows, dead, contract)
    x = matrix_from_rows(rows, contract)[0] if rows else None
    if rows and x is None:  # someone is off: find who, say why
        reasons = _row_reasons(rows, contract)
        keep = [i for i in range(len(rows)) if i not in reasons]
        dead += [(good[i], reasons[i]) for i in sorted(reasons)]
        good, rows = [good[i] for i in keep], [rows[i] for i in keep]
        x = matrix_from_rows(rows, contract)[0] if rows else None
    return Decoded(good, rows, x, dead)


def _typed(
    good: list[StreamEvent], rows: list[dict[str, Any]], dead: list[tuple[StreamEvent, str]], contract: DatasetContract
) -> Decoded:
    """The events of a contract with categories, missing values or timestamps: typed, each bad one set aside."""
    typed = typed_rows(rows, contract)
    reasons = typed.verdicts.reasons()
    dead += [(good[i], reasons[i]) for i in sorted(reasons)]
    keep = np.flatnonzero(~typed.verdicts.bad)
    if keep.size == 0:
        return Decoded([], [], None, dead)
    time = contract.time_column
    return Decoded(
        [good[i] for i in keep],
        [rows[i] for i in keep],
        typed.x[keep],
        dead,
        {name: values[keep] for name, values in typed.categories.items()} or None,
        typed.columns[time.name][keep] if time is not None else None,
    )


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


def scored_parquet(
    good: list[StreamEvent],
    rows: list[dict[str, Any]],
    x: np.ndarray,
    probs: np.ndarray,
    model: Any,
    contract: DatasetContract,
    *,
    batch: str,
    latency_ms: float,
    categories: dict[str, np.ndarray] | None = None,
    times: np.ndarray | None = None,
    behaviour: list[str] | None = None,
    history: tuple[dict[str, list[str | None]], dict[str, np.ndarray]] | None = None,
) -> bytes:
    """The batch's archive: the same record as every served prediction, plus where the event came from."""
    import pyarrow as pa

    from shared.scoring.records import Scored, parquet_bytes, prediction_table

    time_name = contract.time_column.name if contract.time_column else None
    if times is None and time_name:
        times = np.array([r.get(time_name) for r in rows], dtype=np.float64)
    scored = Scored(
        x=x,
        probabilities=probs,
        transaction_ids=[r[contract.transaction_id or ""] for r in rows],
        customer_ids=[r.get(contract.customer) for r in rows] if contract.customer else None,
        times=times,
        model_version=model.version,
        threshold=model.threshold,
        request_id=batch,
        latency_ms=latency_ms,
        source="stream",
        categories=categories,
        behaviour=behaviour,
        history_texts=history[0] if history else None,
        history_numbers=history[1] if history else None,
    )
    enqueued = [e.enqueued_time for e in good]
    oldest = (scored.scored_at - min(enqueued)).total_seconds()  # one observation a batch: its worst lag
    instruments().stream_lag.record(max(oldest, 0.0), {"partition": good[0].partition})
    extra = {
        "enqueued_time": pa.array(enqueued, pa.timestamp("us", tz="UTC")),
        "partition": pa.array([e.partition for e in good], pa.string()),
        "sequence_number": pa.array([e.sequence_number for e in good], pa.int64()),
    }
    return parquet_bytes(prediction_table(scored, contract.model_features, extra))
