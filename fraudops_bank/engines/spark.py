"""The Spark engine: round 0's statistics and each local training step as one PySpark aggregation over the bank's table.

The table stays where it is (Parquet, Delta, or a metastore table such as ``catalog.schema.table``
on Databricks); only sums leave the executors. Every computation mirrors ``fraudops_bank.model``:
features are cast to float then double (the NumPy engine casts to float32), the sums are taken in
double, and each of the ``steps`` of full-batch gradient descent is one aggregation of
``sum(err * x_j)`` and ``sum(err)`` over the cached, standardised rows, with the same learning
rate, L2 penalty and logit clip. PySpark is imported here only, when the engine is used.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np

from fraudops_bank import model as lr
from fraudops_bank import rows
from fraudops_bank.contract import Columns
from fraudops_bank.engines import holdout_cutoff
from fraudops_bank.errors import BankError, TableRefusedError

log = logging.getLogger(__name__)

FORMATS = ("auto", "parquet", "delta", "table")
TABLE_NAME = re.compile(r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*){0,2}")  # table, schema.table or catalog.schema.table
DELTA_MISSING = (
    "this Spark session has no Delta Lake source: run the client on Databricks (Delta is built in), or add the "
    "delta-spark package to the session (pip install delta-spark, then build the session with "
    "delta.configure_spark_with_delta_pip, or spark-submit --packages io.delta:delta-spark_2.13:<version> with "
    "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension)"
)


class SparkEngine:
    """The bank's rows as a cached DataFrame: the features as double (float32 values) and the label as double."""

    def __init__(self, frame: Any, columns: Columns) -> None:
        self.columns = columns
        typed = _typed(frame, columns)
        time = columns.event_time if columns.event_time in typed.columns else None
        survey, frauds = _survey(typed, columns)
        rows.check(survey, columns)
        self.holdout: Any | None = None
        self._holdout_rows = 0
        if time is not None:
            typed, self.holdout, held, held_frauds = _split(typed, time, columns.label)
            survey, frauds = rows.Survey(survey.rows - held, survey.bad_rows), frauds - held_frauds
            self._holdout_rows = held
        self.frame, self._rows, self._frauds = _cached(typed), survey.rows, frauds
        self._standardised: tuple[bytes, Any] | None = None

    @property
    def rows(self) -> int:
        return self._rows

    @property
    def frauds(self) -> int:
        return self._frauds

    @property
    def holdout_rows(self) -> int:
        return self._holdout_rows

    def evaluate(self, params: dict[str, np.ndarray], scaler: dict[str, np.ndarray]) -> dict[str, float]:
        """Loss and AUC (exact: every distinct score a threshold, as ``model.auc``) on the held-out rows."""
        if self.holdout is None or not self._holdout_rows:
            return {}
        from pyspark.ml.evaluation import BinaryClassificationEvaluator
        from pyspark.sql import functions as F

        p = _probability(params["coef"].astype(np.float64), float(params["intercept"][0]))
        scored = _standardised(self.holdout, self.columns, scaler).select(p.alias("p"), F.col("y"))
        clipped = F.least(F.greatest(F.col("p"), F.lit(lr.P_CLIP)), F.lit(1 - lr.P_CLIP))
        loss = -(F.col("y") * F.log(clipped) + (F.lit(1.0) - F.col("y")) * F.log(F.lit(1.0) - clipped))
        row = scored.agg(F.avg(loss).alias("loss"), F.sum("y").alias("frauds")).collect()[0]
        out = {"loss": float(row["loss"])}
        if 0 < float(row["frauds"]) < self._holdout_rows:
            evaluator = BinaryClassificationEvaluator(
                rawPredictionCol="p", labelCol="y", metricName="areaUnderROC", numBins=0
            )
            out["auc"] = float(evaluator.evaluate(scored))
        return out

    def statistics(self) -> dict[str, np.ndarray]:
        from pyspark.sql import functions as F

        features = self.columns.features
        sums = [F.sum(_column(f)).alias(f"s{j}") for j, f in enumerate(features)]
        squares = [F.sum(_column(f) * _column(f)).alias(f"q{j}") for j, f in enumerate(features)]
        row = self.frame.agg(F.count(F.lit(1)).alias("n"), *sums, *squares).collect()[0]
        return {
            "count": np.array([row["n"]], np.float32),
            "sum": np.array([row[f"s{j}"] for j in range(len(features))], np.float64).astype(np.float32),
            "sumsq": np.array([row[f"q{j}"] for j in range(len(features))], np.float64).astype(np.float32),
        }

    def train(
        self, start: dict[str, np.ndarray], scaler: dict[str, np.ndarray], *, steps: int = lr.STEPS
    ) -> dict[str, np.ndarray]:
        from pyspark.sql import functions as F

        xs = self._standardise(scaler)
        w = start["coef"].astype(np.float64).copy()
        b = float(start["intercept"][0])
        n = self._rows
        x = [F.col(f"x{j}") for j in range(len(w))]
        for _ in range(steps):
            err = xs.select(*x, (_probability(w, b) - F.col("y")).alias("err"))  # once per row, then 30 sums
            grads = [F.sum(F.col("err") * x[j]).alias(f"g{j}") for j in range(len(w))]
            row = err.agg(*grads, F.sum("err").alias("e")).collect()[0]
            gradient = np.array([row[f"g{j}"] for j in range(len(w))], np.float64)
            w -= lr.LEARNING_RATE * (gradient / n + lr.L2 * w)
            b -= lr.LEARNING_RATE * float(row["e"]) / n
        return {"coef": w.astype(np.float32), "intercept": np.array([b], np.float32)}

    def log_loss(self, params: dict[str, np.ndarray], scaler: dict[str, np.ndarray]) -> float:
        from pyspark.sql import functions as F

        p = _probability(params["coef"].astype(np.float64), float(params["intercept"][0]))
        p = F.least(F.greatest(p, F.lit(lr.P_CLIP)), F.lit(1 - lr.P_CLIP))
        y = F.col("y")
        loss = -(y * F.log(p) + (F.lit(1.0) - y) * F.log(F.lit(1.0) - p))
        return float(self._standardise(scaler).agg(F.avg(loss)).collect()[0][0])

    def close(self) -> None:
        """Release the cached rows."""
        if self._standardised is not None:
            self._standardised[1].unpersist()
        self.frame.unpersist()
        if self.holdout is not None:
            self.holdout.unpersist()

    def _standardise(self, scaler: dict[str, np.ndarray]) -> Any:
        """``(x - mean) / scale`` per feature as columns ``x0``.. and the label as ``y``, cached per scaler."""
        key = scaler["mean"].tobytes() + scaler["scale"].tobytes()
        if self._standardised is not None and self._standardised[0] == key:
            return self._standardised[1]
        if self._standardised is not None:
            self._standardised[1].unpersist()
        xs = _cached(_standardised(self.frame, self.columns, scaler))
        self._standardised = (key, xs)
        return xs


def _standardised(frame: Any, columns: Columns, scaler: dict[str, np.ndarray]) -> Any:
    """``frame``'s features as ``(x - mean) / scale`` in columns ``x0``.., the label as ``y``."""
    from pyspark.sql import functions as F

    mean, scale = scaler["mean"].astype(np.float64), scaler["scale"].astype(np.float64)
    standardised = [
        ((_column(f) - F.lit(float(mean[j]))) / F.lit(float(scale[j]))).alias(f"x{j}")
        for j, f in enumerate(columns.features)
    ]
    return frame.select(*standardised, _column(columns.label).alias("y"))


def _split(frame: Any, time: str, label: str) -> tuple[Any, Any, int, int]:
    """The training rows and the held-out ones (after ``holdout_cutoff`` of the time span, as the NumPy engine
    chooses them), without the time column; and how many rows and frauds were held out."""
    from pyspark.sql import functions as F

    t = _column(time)
    finite = t.isNotNull() & ~F.isnan(t) & (F.abs(t) != F.lit(float("inf")))
    span = frame.where(finite).agg(F.min(t).alias("first"), F.max(t).alias("last")).collect()[0]
    cutoff = None if span["first"] is None else holdout_cutoff(float(span["first"]), float(span["last"]))
    if cutoff is None:
        return frame.drop(time), None, 0, 0
    later = finite & (t > F.lit(cutoff))
    held = _cached(frame.where(later).drop(time))
    counts = held.agg(F.count(F.lit(1)).alias("n"), F.sum(_column(label)).alias("f")).collect()[0]
    return frame.where(~later).drop(time), held, int(counts["n"]), int(counts["f"] or 0)


def _cached(frame: Any) -> Any:
    """``frame`` cached on the executors (each step reads it again), or as it is where caching is not allowed."""
    try:
        return frame.cache()
    except Exception as exc:  # e.g. serverless compute refuses to persist; the steps then re-read the table
        log.warning("cannot cache the rows (%s); every step will read the table again", type(exc).__name__)
        return frame


def _probability(w: np.ndarray, b: float) -> Any:
    """The sigmoid of the clipped logit ``x . w + b`` as a column expression over ``x0``.. (``model._sigmoid``)."""
    from pyspark.sql import functions as F

    z = F.lit(0.0)
    for j, wj in enumerate(w):
        z = z + F.col(f"x{j}") * F.lit(float(wj))
    z = F.least(F.greatest(z + F.lit(b), F.lit(-lr.Z_CLIP)), F.lit(lr.Z_CLIP))
    return F.lit(1.0) / (F.lit(1.0) + F.exp(-z))


def _column(name: str) -> Any:
    """The column ``name`` taken literally (backquoted: never a nested field or an expression)."""
    from pyspark.sql import functions as F

    return F.col(f"`{name}`")  # Columns.from_metadata admits no backquote in a name


def _typed(frame: Any, columns: Columns) -> Any:
    """The required columns, checked for presence and numeric types, features cast to float then double."""
    from pyspark.sql.types import NumericType

    fields = {f.name: f.dataType for f in frame.schema.fields}
    rows.check_columns(
        columns,
        {name: t.simpleString() for name, t in fields.items()},
        [name for name, t in fields.items() if isinstance(t, NumericType)],
    )
    time = (
        columns.event_time
        if columns.event_time in fields and isinstance(fields[columns.event_time], NumericType)
        else None
    )
    return frame.select(
        *(_column(f).cast("float").cast("double").alias(f) for f in columns.features),
        _column(columns.label).cast("double").alias(columns.label),
        *([_column(time).cast("double").alias(time)] if time else []),
    )


def _survey(frame: Any, columns: Columns) -> tuple[rows.Survey, int]:
    """One aggregation: the row count and per column the rows that break ``fraudops_bank.rows``' rule; the frauds."""
    from pyspark.sql import functions as F

    def count(bad: Any, alias: str) -> Any:
        return F.sum(F.when(bad, 1).otherwise(0)).alias(alias)

    def not_finite(c: Any) -> Any:
        return c.isNull() | F.isnan(c) | (F.abs(c) == F.lit(float("inf")))

    label = _column(columns.label)
    counts = [count(not_finite(_column(f)), f"b{j}") for j, f in enumerate(columns.features)]
    row = frame.agg(
        F.count(F.lit(1)).alias("n"),
        *counts,
        count(label.isNull() | ~label.isin(0.0, 1.0), "label"),
        count(label == 1.0, "frauds"),
    ).collect()[0]
    bad = {f: int(row[f"b{j}"] or 0) for j, f in enumerate(columns.features)}
    bad[columns.label] = int(row["label"] or 0)
    return rows.Survey(int(row["n"]), bad), int(row["frauds"] or 0)


def read(spark: Any, table: str, columns: Columns, *, fmt: str = "auto") -> SparkEngine:
    """The engine over ``columns`` of ``table``: a Parquet or Delta path, or a metastore table name (``fmt``
    ``auto`` guesses)."""
    kind = _kind(table, fmt)
    log.info("reading %s as %s", table, kind)
    try:
        if kind == "table":
            frame = spark.table(table)
        elif kind == "delta":
            frame = spark.read.format("delta").load(table)
        else:
            frame = spark.read.parquet(table)
    except Exception as exc:  # pyspark's AnalysisException and the JVM's errors share no narrower base
        text = str(exc)
        if kind == "delta" and ("DATA_SOURCE_NOT_FOUND" in text or "Failed to find the data source" in text):
            raise TableRefusedError(f"cannot read {table} as Delta: {DELTA_MISSING}") from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise TableRefusedError(f"Spark cannot read {table} as {kind}: {first}") from None
    return SparkEngine(frame, columns)


def _kind(table: str, fmt: str) -> str:
    """``parquet``, ``delta`` or ``table``: as given, or for ``auto`` from what the path holds."""
    if fmt not in FORMATS:
        raise TableRefusedError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt != "auto":
        return fmt
    if os.path.isdir(os.path.join(table, "_delta_log")):  # also Unity Catalog volumes: /Volumes/... on the driver
        return "delta"
    if not os.path.exists(table) and "/" not in table and ":" not in table and TABLE_NAME.fullmatch(table):
        return "table"
    return "parquet"


def session() -> tuple[Any, bool]:
    """The active Spark session (Databricks' own) or a new one, and whether this process may stop it.

    Only a local session this process started is stopped; never Databricks' own.
    ``BankError`` without PySpark.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise BankError(
            "the Spark engine needs PySpark: pip install 'fraudops-bank[spark]' (Databricks runtimes have it)"
        ) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    spark = SparkSession.builder.appName("fraudops-bank").config("spark.ui.showConsoleProgress", "false").getOrCreate()
    if os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        return spark, False
    try:
        return spark, str(spark.conf.get("spark.master", "")).startswith("local")
    except Exception:  # a Spark Connect session may not show its master: not ours to stop
        return spark, False
