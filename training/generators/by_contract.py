"""Synthetic rows for any contract, with known truth: what a bank can try a contract file with before it has data.

It draws every column from what the contract declares, and nothing else:

* a number within its bounds (uniform between two bounds; above a lower or below an upper bound, the
  bound plus or minus a log-normal distance; unbounded, a normal), an integer rounded from it, or one
  of its ``allowed`` values; a boolean; a category among the declared ones (or ``<column>_<k>``, ten
  of them, for an open set), with skewed shares;
* a nullable column missing in 5 to 25 % of rows (a share per column);
* ids as text: the transaction id unique per row, an entity key from a pool (a customer is seen
  about twenty times), any other text a fresh token;
* the event time, when there is one, increasing (as a timestamp with its UTC offset, or seconds).

The label is drawn from a true probability ``sigmoid(a0 + sum of effects)`` over a few features chosen
by the seed (at most six): a numeric feature acts through its standardised value, a category through
an effect per category, and a missing value through an effect of its own. ``a0`` is solved so the
mean probability is ``fraud_rate``, and ``truth`` writes each row's probability (the quality bench's
optimum). This is a test picture, not a picture of any real fraud.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shared.domain.contract import Column, ColumnType, DatasetContract

log = logging.getLogger(__name__)

CHUNK_ROWS = 100_000
OPEN_CATEGORIES = 10
MAX_EFFECTS = 6
ROWS_PER_ENTITY = 20
START = np.datetime64("2026-11-02T08:00:00", "s")


@dataclass(frozen=True)
class ContractSummary:
    rows: int
    frauds: int
    path: str
    truth: str | None
    bytes: int
    mechanics: str = "by_contract"


@dataclass(frozen=True)
class _Effect:
    """How one feature moves the logit: a weight on its standardised value, or per category; and when missing."""

    column: str
    weight: float
    per_category: np.ndarray | None
    missing: float


def _categories(col: Column) -> np.ndarray:
    if col.categories:
        return np.array(col.categories, dtype=object)
    return np.array([f"{col.name.lower()}_{k}" for k in range(OPEN_CATEGORIES)], dtype=object)


def _shares(k: int, rng: np.random.Generator) -> np.ndarray:
    w = np.asarray(rng.dirichlet(np.full(k, 0.7)), dtype=np.float64)
    return np.asarray(w / w.sum())


def _numbers(col: Column, z: np.ndarray) -> np.ndarray:
    """A standard normal ``z`` mapped into the column's range (monotone, so ``z`` is the signal)."""
    lo, hi = col.minimum, col.maximum
    if col.allowed:
        values = np.array(sorted(col.allowed), float)
        cut = np.clip(((z + 3) / 6 * len(values)).astype(int), 0, len(values) - 1)
        return np.asarray(values[cut], dtype=np.float64)
    if lo is not None and hi is not None:
        from scipy.special import ndtr

        x = lo + (hi - lo) * ndtr(z)
    elif lo is not None:
        x = lo + np.exp(1.0 + z)
    elif hi is not None:
        x = hi - np.exp(1.0 + z)
    else:
        x = z * 10.0
    if col.type is ColumnType.INTEGER:
        x = np.round(x)
        if lo is not None:
            x = np.maximum(x, np.ceil(lo))
        if hi is not None:
            x = np.minimum(x, np.floor(hi))
    return np.asarray(x, dtype=np.float64)


class _Picture:
    """The fixed part: each column's shares and missing rate, and the effects the label follows."""

    def __init__(self, contract: DatasetContract, seed: int) -> None:
        rng = np.random.default_rng([seed, 7])
        self.contract = contract
        self.missing = {c.name: float(rng.uniform(0.05, 0.25)) for c in contract.columns if c.nullable}
        self.shares = {
            c.name: _shares(len(_categories(c)), rng) for c in contract.columns if c.type is ColumnType.CATEGORICAL
        }
        features = [contract.column(n) for n in contract.feature_names]
        chosen = rng.choice(len(features), size=min(MAX_EFFECTS, len(features)), replace=False)
        self.effects = []
        for j in sorted(chosen):
            col = features[j]
            per = rng.normal(0, 1.2, len(_categories(col))) if col.type is ColumnType.CATEGORICAL else None
            self.effects.append(
                _Effect(col.name, float(rng.choice([-1, 1]) * rng.uniform(0.6, 1.4)), per, float(rng.normal(0, 1)))
            )


def _draw(
    picture: _Picture, rng: np.random.Generator, start: int, n: int, clock: float
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``n`` rows as columns (text as object arrays, missing as None or NaN) and their logit without ``a0``."""
    contract = picture.contract
    entities = {column for _, column in contract.roles.entities} if contract.roles is not None else set()
    pool = max(1, (start + n) // ROWS_PER_ENTITY + 1)
    columns: dict[str, np.ndarray] = {}
    signal: dict[str, np.ndarray] = {}
    for col in contract.columns:
        if col.role == "label":
            continue
        if col.name == contract.transaction_id:
            columns[col.name] = np.char.add("t", (start + np.arange(n)).astype(str)).astype(object)
        elif col.role == "time" or col.type is ColumnType.TIMESTAMP:
            seconds = clock + np.cumsum(rng.exponential(30.0, n))
            if col.type is ColumnType.TIMESTAMP:
                stamps = (START + seconds.astype("timedelta64[s]")).astype(str)
                columns[col.name] = np.char.add(stamps, "+00:00").astype(object)
            else:
                columns[col.name] = seconds
            signal[col.name] = seconds
        elif col.type is ColumnType.STRING:
            ids = rng.integers(0, pool, n) if col.name in entities else start + np.arange(n)
            columns[col.name] = np.char.add(f"{col.name[:3].upper()}-", ids.astype(str)).astype(object)
        elif col.type is ColumnType.CATEGORICAL:
            codes = rng.choice(len(picture.shares[col.name]), n, p=picture.shares[col.name])
            columns[col.name] = _categories(col)[codes]
            signal[col.name] = codes
        elif col.type is ColumnType.BOOLEAN:
            z = rng.normal(size=n)
            columns[col.name] = (z > 0).astype(object)
            signal[col.name] = z
        else:
            z = rng.normal(size=n)
            columns[col.name] = _numbers(col, z)
            signal[col.name] = z
        if col.nullable:
            gone = rng.random(n) < picture.missing[col.name]
            held = columns[col.name]
            if held.dtype == object:
                held[gone] = None
            else:
                held[gone] = np.nan
            signal[col.name + " missing"] = gone
    logit = np.zeros(n)
    for e in picture.effects:
        gone = signal.get(e.column + " missing", np.zeros(n, bool))
        if e.per_category is not None:
            value = e.per_category[signal[e.column]]
        else:
            value = e.weight * np.clip(signal[e.column], -3, 3)
        logit += np.where(gone, e.missing, value)
    return columns, logit


def _intercept(logit: np.ndarray, rate: float) -> float:
    """``a0`` with mean ``sigmoid(logit + a0)`` equal to ``rate`` (bisection: the mean rises with ``a0``)."""
    lo, hi = -30.0, 30.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if np.mean(1 / (1 + np.exp(-(logit + mid)))) < rate:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def generate(
    contract: DatasetContract,
    rows: int,
    seed: int,
    out: str | Path,
    *,
    fraud_rate: float = 0.05,
    truth: str | Path | None = None,
) -> ContractSummary:
    """Write ``rows`` rows of ``contract``'s columns to ``out`` (CSV); optionally each row's true probability."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 < fraud_rate < 0.5:
        raise ValueError("the positive rate must be between 0 and 0.5")
    assert contract.label is not None
    label = contract.label.name
    picture = _Picture(contract, seed)
    rng = np.random.default_rng(seed)
    a0 = _intercept(_draw(picture, np.random.default_rng([seed, 1]), 0, min(rows, 20_000), 0.0)[1], fraud_rate)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frauds, clock = 0, 0.0
    time_name = contract.time_column.name if contract.time_column else None
    truth_file = open(truth, "w", encoding="utf-8") if truth else None  # noqa: SIM115
    try:
        if truth_file:
            truth_file.write("fraud_probability\n")
        with out.open("wb") as f:
            for start in range(0, rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, rows - start)
                columns, logit = _draw(picture, rng, start, n, clock)
                if time_name and columns[time_name].dtype != object:
                    clock = float(columns[time_name][-1])
                p = 1.0 / (1.0 + np.exp(-(logit + a0)))
                y = (rng.random(n) < p).astype(np.int8)
                frauds += int(y.sum())
                arrays = {
                    c.name: pa.array(y) if c.name == label else _arrow(c, columns[c.name]) for c in contract.columns
                }
                pacsv.write_csv(
                    pa.table(arrays), f, pacsv.WriteOptions(include_header=start == 0, quoting_style="needed")
                )
                if truth_file:
                    truth_file.write("\n".join(f"{x:.9g}" for x in p) + "\n")
    finally:
        if truth_file:
            truth_file.close()
    log.info("generated %d %s rows (%d positive) to %s", rows, contract.name, frauds, out)
    return ContractSummary(rows, frauds, str(out), str(truth) if truth else None, out.stat().st_size)


def _arrow(col: Column, values: np.ndarray) -> object:
    import pyarrow as pa

    if col.type is ColumnType.BOOLEAN:
        return pa.array(values, type=pa.bool_())
    if values.dtype == object:
        return pa.array(values, type=pa.string())
    if col.type is ColumnType.INTEGER:
        gone = np.isnan(values)
        return pa.array(np.where(gone, 0, values).astype(np.int64), mask=gone)
    return pa.array(values, type=pa.float64(), from_pandas=True)  # NaN written as an empty field
