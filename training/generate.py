"""Synthetic transactions in the exact Kaggle ``creditcard.csv`` format, with known truth.

The generative model (documented so tests can reason about it):

* Normal transactions: ``V_i ~ N(0, s_i^2)`` independently, with variance falling
  geometrically from 3.8 (V1) to 0.1 (V28), as in the real PCA components.
* Frauds are a two-part mixture on the features the real data separates most
  (V14, V17, V12, V10, V16, V3, V7, V11, V4): 85 % "obvious" frauds, shifted by several
  standard deviations with twice the spread; 15 % "camouflaged" frauds, shifted by half a
  standard deviation. The other features follow the normal distribution.
* Amount is log-normal (median about 22, mean about 88, heavy right tail), Time is
  integer seconds over two days with exponential gaps (sorted, as in the real file).

Because the class-conditional densities are known, the true fraud probability of every row
is computed exactly (``--truth``), which gives the Bayes-optimal AUC for tests.
Rows are written in chunks, so memory does not grow with ``rows``.

That picture is the ``mixture`` mechanism, the default. ``--mechanics`` picks another picture of
fraud (``training/mechanics.py``: interactions, steps, correlated features, drift over time), each
with its exact probabilities too, so the pipeline is judged on data whose mechanics it was not
built around.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training import mechanics
from training.mechanics import N_COMPONENTS, STDS

log = logging.getLogger(__name__)

DATASET = "creditcard"  # the contract this generator writes (contracts/creditcard.yaml)
TWO_DAYS_SECONDS = 172_792.0
CHUNK_ROWS = 200_000
# Shifts of "obvious" frauds, in standard deviations of the normal class (index = V number).
OBVIOUS_SHIFTS = {14: -6.0, 17: -5.0, 12: -5.0, 10: -4.5, 16: -3.5, 3: -4.0, 7: -3.5, 11: 3.5, 4: 3.5}
OBVIOUS_SPREAD = 2.0
OBVIOUS_WEIGHT = 0.85
CAMOUFLAGE_SCALE = 0.5
HEADER = ",".join(f'"{c}"' for c in ["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class"])


@dataclass(frozen=True)
class GenerateSummary:
    rows: int
    frauds: int
    path: str
    truth: str | None
    bytes: int
    mechanics: str = "mixture"


def _shift_vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the shifted features, the obvious-fraud means and the camouflaged means."""
    idx = np.array([k - 1 for k in OBVIOUS_SHIFTS])
    shifts = np.array(list(OBVIOUS_SHIFTS.values())) * STDS[idx]
    return idx, shifts, np.sign(shifts) * STDS[idx] * CAMOUFLAGE_SCALE


def _log_normal_pdf(x: np.ndarray, mean: np.ndarray | float, std: np.ndarray | float) -> np.ndarray:
    z = (x - mean) / std
    return -0.5 * z * z - np.log(std)


def true_fraud_probability(v: np.ndarray, fraud_rate: float) -> np.ndarray:
    """Exact posterior P(fraud | V1..V28) under the generative model (Amount and Time are independent of the class)."""
    idx, shifts, camo_shift = _shift_vectors()
    x = v[:, idx]
    s = STDS[idx]
    log_normal = _log_normal_pdf(x, 0.0, s).sum(axis=1)
    log_obvious = _log_normal_pdf(x, shifts, s * OBVIOUS_SPREAD).sum(axis=1) + np.log(OBVIOUS_WEIGHT)
    log_camo = _log_normal_pdf(x, camo_shift, s).sum(axis=1)
    log_camo = log_camo + np.log(1.0 - OBVIOUS_WEIGHT)
    log_fraud = np.logaddexp(log_obvious, log_camo)
    logit = np.log(fraud_rate) - np.log1p(-fraud_rate) + log_fraud - log_normal
    return np.asarray(1.0 / (1.0 + np.exp(-logit)))


def _chunk(
    rng: np.random.Generator, n: int, fraud_rate: float, t0: float, gap: float, mechanism: str = "mixture"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``n`` rows after time ``t0``: features, amounts, times, labels and (other mechanisms) the true probabilities."""
    times = t0 + np.cumsum(rng.exponential(gap, n))
    if mechanism != "mixture":
        v, amount, y, p = mechanics.sample(
            rng, n, mechanics.MECHANISMS[mechanism], fraud_rate, times / TWO_DAYS_SECONDS
        )
        return v, amount, times, y, p
    y = rng.random(n) < fraud_rate
    v = rng.standard_normal((n, N_COMPONENTS)) * STDS
    idx, shifts, camo_shift = _shift_vectors()
    s = STDS[idx]
    frauds = np.flatnonzero(y)
    obvious = rng.random(frauds.size) < OBVIOUS_WEIGHT
    noise = rng.standard_normal((frauds.size, idx.size)) * s
    v[np.ix_(frauds, idx)] = np.where(
        obvious[:, None],
        shifts + noise * OBVIOUS_SPREAD,
        camo_shift + noise,
    )
    return v, mechanics.amounts(rng, n), times, y, None


def generate(
    rows: int,
    seed: int,
    out: str | Path,
    *,
    fraud_rate: float = 0.00172,
    truth: str | Path | None = None,
    mechanics_name: str = "mixture",
) -> GenerateSummary:
    """Write ``rows`` transactions to ``out`` (CSV, Kaggle format); optionally the true probabilities."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 < fraud_rate < 0.5:
        raise ValueError("fraud rate must be between 0 and 0.5")
    if mechanics_name not in mechanics.NAMES:
        raise ValueError(f"unknown mechanics {mechanics_name!r}; choose one of {', '.join(mechanics.NAMES)}")
    rng = np.random.default_rng(seed)
    gap = TWO_DAYS_SECONDS / rows
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = [f"V{i}" for i in range(1, 29)]
    frauds, t = 0, 0.0
    truth_file = open(truth, "w", encoding="utf-8") if truth else None  # noqa: SIM115
    try:
        if truth_file:
            truth_file.write("fraud_probability\n")
        with out.open("wb") as f:
            f.write((HEADER + "\n").encode())
            for start in range(0, rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, rows - start)
                v, amount, times, y, p = _chunk(rng, n, fraud_rate, t, gap, mechanics_name)
                t = float(times[-1])
                frauds += int(y.sum())
                cols = {"Time": pa.array(np.floor(times).astype(np.int64))}
                cols.update({name: pa.array(v[:, i]) for i, name in enumerate(names)})
                cols["Amount"] = pa.array(amount)
                cols["Class"] = pa.array(y.astype(np.int8))
                pacsv.write_csv(pa.table(cols), f, pacsv.WriteOptions(include_header=False))
                if truth_file:
                    p = true_fraud_probability(v, fraud_rate) if p is None else p
                    truth_file.write("\n".join(f"{x:.9g}" for x in p) + "\n")
    finally:
        if truth_file:
            truth_file.close()
    log.info("generated %d rows (%d frauds, %s) to %s", rows, frauds, mechanics_name, out)
    return GenerateSummary(rows, frauds, str(out), str(truth) if truth else None, out.stat().st_size, mechanics_name)


def sample_features(rows: int, seed: int, fraud_rate: float = 0.00172) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` generated transactions as a float32 ``[V1..V28, Amount]`` matrix and their labels, in memory."""
    v, amount, _, y, _ = _chunk(np.random.default_rng(seed), rows, fraud_rate, 0.0, 1.0)
    return np.column_stack([v, amount]).astype(np.float32), y.astype(np.int8)
