"""Batch scoring of a CSV or Parquet file with the champion (``fraudops score``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shared.domain.contract import DatasetContract
from shared.domain.errors import FileRejectedError
from shared.domain.rows import check_columns
from shared.scoring.scorer import Scorer

log = logging.getLogger(__name__)


def _read_table(path: Path) -> Any:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if path.suffix == ".parquet":
        return pq.read_table(path)
    return pacsv.read_csv(path)


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


def score_file(path: Path, out: Path, scorer: Scorer, contract: DatasetContract) -> BatchScoreOutcome:
    """Score every row the contract accepts; a row it refuses gets the contract's reason in ``error``, no score."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if not path.is_file():
        raise FileRejectedError(f"{path} is not a file")
    table = _read_table(path)
    model = scorer.current()
    missing = [f for f in model.feature_names if f not in table.column_names]
    if missing:
        raise FileRejectedError(f"columns missing for scoring: {', '.join(missing)}")
    label = contract.label.name if contract.label else None
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
    verdicts = check_columns(columns, contract, table.num_rows, required=list(model.feature_names))
    ok = ~verdicts.bad
    with np.errstate(over="ignore"):  # a refused row beyond float32 becomes inf here, and is never scored
        x = np.column_stack([columns[f] for f in model.feature_names]).astype(np.float32)
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
