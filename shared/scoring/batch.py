"""Batch scoring of a CSV or Parquet file with the champion (``fraudops score``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.contract import DatasetContract
from shared.domain.errors import FileRejectedError
from shared.domain.rows import check_columns
from shared.domain.typed_rows import is_plain, typed_rows
from shared.scoring.scorer import Scorer

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.scoring.online import OnlineFeatures

log = logging.getLogger(__name__)

BATCH = 1_000  # rows placed in the online store per round trip pair


def _plain(table: Any, contract: DatasetContract, label: str | None, own: list[str]) -> tuple[np.ndarray, Any]:
    """Numbers only: the columns as floats, checked by the contract's rules."""
    import pyarrow as pa

    checked = [c.name for c in contract.columns if c.name in table.column_names and c.name != label]
    try:
        columns = {
            name: (
                np.asarray(table.column(name).cast(pa.string()).to_pylist(), dtype=object)
                if contract.column(name).dtype == "string"
                else table.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
            )
            for name in checked
        }
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FileRejectedError(f"a feature column is not numeric ({exc})") from None
    verdicts = check_columns(columns, contract, table.num_rows, required=list(own))
    with np.errstate(over="ignore"):  # a refused row beyond float32 becomes inf here, and is never scored
        x = np.column_stack([columns[f] for f in own]).astype(np.float32)
    return x, verdicts


def _with_behaviour(
    contract: DatasetContract,
    columns: dict[str, np.ndarray],
    ok: np.ndarray,
    x: np.ndarray,
    online: OnlineFeatures,
    pseudonymise: Callable[[str], str | None] | None,
) -> tuple[np.ndarray, list[str | None]]:
    """The accepted rows placed in the online store in (time, id) order, in batches; their features after their
    own columns, and each row's behaviour status (None for a refused row)."""
    from shared.scoring.online import events_of

    time_name, tid = contract.time_column.name if contract.time_column else "", contract.transaction_id or ""
    times = np.asarray(columns[time_name], np.float64)
    ids = [str(v) if v is not None else None for v in columns[tid]]
    usable = ok & ~np.isnan(times) & np.array([i is not None for i in ids])
    rows = np.flatnonzero(usable)
    rows = rows[np.lexsort((np.asarray([ids[i] for i in rows], dtype=str), times[rows]))]
    out = np.full((x.shape[0], x.shape[1] + len(contract.behaviour.names())), np.nan, dtype=np.float32)
    out[:, : x.shape[1]] = x
    statuses: list[str | None] = [None if not k else "unavailable" for k in ok]  # no id or time: none placed
    for start in range(0, rows.size, BATCH):
        chosen = rows[start : start + BATCH]
        picked = {name: values[chosen] for name, values in columns.items()}
        served = online.serve(events_of(contract, picked, [ids[i] for i in chosen], times[chosen], pseudonymise))
        out[chosen, x.shape[1] :] = served.vectors
        for i, status in zip(chosen, served.status, strict=True):
            statuses[int(i)] = status
    return out, statuses


def _read_table(path: Path, contract: DatasetContract) -> Any:
    """The file as a table; a CSV's text columns (ids, categories, times) read as text, never guessed numbers."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.read_table(path)
    texts = {c.name: pa.string() for c in contract.columns if c.dtype in ("string", "timestamp")}
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=texts, strings_can_be_null=True))


@dataclass(frozen=True)
class BatchScoreOutcome:
    """One scored file: how many rows were scored, flagged and refused (with a reason each, in ``out``)."""

    rows: int
    scored: int
    unscorable: int
    flagged: int
    model_version: str
    threshold: float
    out: str


def score_file(
    path: Path,
    out: Path,
    scorer: Scorer,
    contract: DatasetContract,
    *,
    online: OnlineFeatures | None = None,
    pseudonymise: Callable[[str], str | None] | None = None,
) -> BatchScoreOutcome:
    """Score every row the contract accepts; a row it refuses gets the contract's reason in ``error``, no score.
    A contract with behavioural features (``online``) places the file's rows in the online store in time order
    (event time, then id) before scoring them, as if they had arrived one after the other."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not path.is_file():
        raise FileRejectedError(f"{path} is not a file")
    table = _read_table(path, contract)
    model = scorer.current()
    own = contract.feature_names
    missing = [f for f in own if f not in table.column_names]
    if missing:
        raise FileRejectedError(f"columns missing for scoring: {', '.join(missing)}")
    label = contract.label.name if contract.label else None
    statuses: list[str | None] | None = None
    if is_plain(contract):
        x, verdicts = _plain(table, contract, label, own)
    else:  # categories, timestamps, missing values, entity keys: the typed path every other edge uses
        typed = typed_rows([{k: v for k, v in r.items() if k != label} for r in table.to_pylist()], contract)
        verdicts, x = typed.verdicts, model.encode(typed.x, typed.categories)
        if online is not None:
            x, statuses = _with_behaviour(contract, typed.columns, ~typed.verdicts.bad, x, online, pseudonymise)
    ok = ~verdicts.bad
    probs = np.full(len(x), np.nan)
    if ok.any():
        probs[ok] = model.predict_proba(np.ascontiguousarray(x[ok]))
    tid = contract.transaction_id
    ids = (
        table.column(tid).cast(pa.string())
        if tid and tid in table.column_names
        else pa.array([str(i) for i in range(1, len(x) + 1)])
    )
    result = pa.table(
        {
            "transaction_id": ids,
            "fraud_probability": pa.array(probs, mask=~ok),
            "is_fraud": pa.array(probs >= model.threshold, mask=~ok),
            "model_version": pa.array([model.version] * len(x)),
            "error": pa.array([verdicts.reason(i) for i in range(len(x))], type=pa.string()),
        }
    )
    if statuses is not None:
        result = result.append_column("behaviour", pa.array(statuses, pa.string()))
    out.parent.mkdir(parents=True, exist_ok=True)
    pacsv.write_csv(result, out)
    flagged = int(np.sum(probs[ok] >= model.threshold))
    log.info(
        "scored %d rows of %s with %s: %d flagged, %d unscorable",
        int(ok.sum()),
        path,
        model.version,
        flagged,
        int((~ok).sum()),
    )
    return BatchScoreOutcome(
        rows=len(x),
        scored=int(ok.sum()),
        unscorable=int((~ok).sum()),
        flagged=flagged,
        model_version=model.version,
        threshold=model.threshold,
        out=str(out),
    )
