"""The bank client's Spark engine against its NumPy engine, on the same rows: PySpark in local mode, one session.

The NumPy engine (``fraudops_bank.model``) is the reference: on the same Parquet rows the Spark
engine must post the same round-0 statistics and the same model update (within 1e-6), and refuse
the same hostile tables with the same sentence.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudops_bank import model as lr
from fraudops_bank.client import BankClient, Safeguards
from fraudops_bank.contract import Columns
from fraudops_bank.engines import numpy as numpy_engine
from fraudops_bank.engines import spark as spark_engine
from fraudops_bank.errors import TableRefusedError
from fraudops_bank.served import ServedPolicy
from fraudops_bank.wire import from_wire, to_wire
from shared.domain.contracts import get_contract

COLUMNS = Columns(tuple(get_contract("creditcard").feature_names), get_contract("creditcard").roles.label)
FEATURES, LABEL = COLUMNS.features, COLUMNS.label

pytestmark = pytest.mark.slow  # a JVM per module, and one Spark job per gradient step


@pytest.fixture(scope="module")
def spark():
    """One local SparkSession for the module: two cores, no UI, loopback only; stopped afterwards."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # no Python worker is needed, but never a stray one
    session = (
        SparkSession.builder.master("local[2]")
        .appName("fraudops-bank-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.adaptive.enabled", "false")  # tiny jobs: re-planning costs more than it saves here
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _arrow(x: np.ndarray, y: np.ndarray) -> pa.Table:
    """Rows as a bank might store them: features in double, the label as a long."""
    return pa.table({**{f: x[:, j].astype(np.float64) for j, f in enumerate(FEATURES)}, LABEL: y.astype(np.int64)})


def _parquet(directory: Path, table: pa.Table, files: int = 4) -> Path:
    directory.mkdir(parents=True)
    for i, part in enumerate(np.array_split(np.arange(table.num_rows), files)):
        pq.write_table(table.take(pa.array(part, pa.int64())), directory / f"part-{i:05d}.parquet")
    return directory


@pytest.fixture(scope="module")
def bank_table(tmp_path_factory):
    from training.generate import sample_features

    x, y = sample_features(4000, 11, fraud_rate=0.05)
    return _parquet(tmp_path_factory.mktemp("bank") / "transactions", _arrow(x, y))


class FakeServer:
    """The two routes a round needs, answering as the API does; records what each bank posts."""

    def __init__(self) -> None:
        self.kind, self.arrays, self.posts = "statistics", lr.stats_template(len(FEATURES)), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "GET" and request.url.path.startswith("/api/federated/rounds/"):
            return httpx.Response(200, json={"status": "open", "participants": {}})  # the bank has not sent yet
        if request.method == "GET":
            meta = {
                "round": 0 if self.kind == "statistics" else 1,
                "kind": self.kind,
                "experiment": "t",
                "mode": "visible",
            }
            meta.update(features=list(FEATURES), label=LABEL)
            return httpx.Response(200, content=to_wire(self.arrays), headers={"x-fl-metadata": json.dumps(meta)})
        self.posts.append((dict(request.headers), from_wire(request.content)))
        return httpx.Response(202, json={"status": "open"})


def _posts(engine, server: FakeServer) -> list:
    http = httpx.Client(base_url="https://app.example", transport=httpx.MockTransport(server))
    lenient = Safeguards(policy=ServedPolicy(min_rows=1, min_frauds=1), allow_visible=True)
    client = BankClient(http, "bank-a", b"key", safeguards=lenient)
    server.posts = []
    server.kind, server.arrays = "statistics", lr.stats_template(len(FEATURES))
    client.take_part(engine)
    stats = server.posts[0][1]
    rng = np.random.default_rng(5)  # a model round from a non-zero model, as after a few rounds
    server.kind, server.arrays = (
        "model",
        {
            "coef": (rng.normal(size=len(FEATURES)) * 0.3).astype(np.float32),
            "intercept": np.array([-2.5], np.float32),
            **{f"scaler_{k}": v for k, v in lr.scaler_from(stats).items()},
        },
    )
    client.take_part(engine)
    return server.posts


def test_spark_posts_what_the_numpy_client_posts_on_the_same_rows(spark, bank_table):
    server = FakeServer()
    reference = _posts(numpy_engine.read(bank_table, COLUMNS), server)
    engine = spark_engine.read(spark, str(bank_table), COLUMNS)
    try:
        posted = _posts(engine, server)
    finally:
        engine.close()

    (np_head0, np_stats), (np_head1, np_model) = reference
    (sp_head0, sp_stats), (sp_head1, sp_model) = posted
    assert sp_stats["count"][0] == np_stats["count"][0] == 4000
    np.testing.assert_allclose(sp_stats["sum"], np_stats["sum"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(sp_stats["sumsq"], np_stats["sumsq"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(sp_model["coef"], np_model["coef"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(sp_model["intercept"], np_model["intercept"], rtol=0, atol=1e-6)
    assert np.abs(np_model["coef"] - server.arrays["coef"]).max() > 1e-3  # the round did move the model
    for np_head, sp_head in ((np_head0, sp_head0), (np_head1, sp_head1)):
        assert sp_head["x-fl-examples"] == np_head["x-fl-examples"] == "4000"
        assert sp_head["x-fl-bank"] == "bank-a" and len(sp_head["x-fl-signature"]) == 64
    np_loss, sp_loss = (json.loads(h["x-fl-metrics"])["local_loss"] for h in (np_head1, sp_head1))
    assert sp_loss == pytest.approx(np_loss, abs=1e-6) and 0 < np_loss < 1
    assert np_head0["x-fl-metrics"] == sp_head0["x-fl-metrics"] == "{}"


def test_a_metastore_table_or_view_is_read_by_name(spark, bank_table):
    spark.read.parquet(str(bank_table)).createOrReplaceTempView("bank_transactions")
    engine = spark_engine.read(spark, "bank_transactions", COLUMNS)
    try:
        assert engine.rows == 4000
        np.testing.assert_allclose(
            engine.statistics()["sum"], numpy_engine.read(bank_table, COLUMNS).statistics()["sum"], rtol=1e-6
        )
    finally:
        engine.close()


def _hostile(name: str, rows: pa.Table) -> pa.Table:
    def set_values(table: pa.Table, column: str, at: dict[int, object], typ: pa.DataType) -> pa.Table:
        values = table.column(column).to_pylist()
        for i, v in at.items():
            values[i] = v
        return table.set_column(table.schema.get_field_index(column), column, pa.array(values, typ))

    if name == "missing column":
        return rows.drop_columns(["Amount"])
    if name == "null, NaN and infinite features":
        rows = set_values(rows, "V3", {0: None, 5: None}, pa.float64())
        return set_values(rows, "V7", {1: float("nan"), 2: float("inf")}, pa.float64())
    if name == "beyond float32":
        return set_values(rows, "Amount", {3: 1e39}, pa.float64())
    if name == "labels not 0 or 1":
        return set_values(rows, LABEL, {0: 2, 1: None}, pa.int64())
    if name == "text column":
        return rows.set_column(rows.schema.get_field_index("V5"), "V5", pa.array(["x"] * rows.num_rows))
    assert name == "no rows"
    return rows.slice(0, 0)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("missing column", "the table lacks column Amount"),
        ("null, NaN and infinite features", "V3: 2 rows with a missing, NaN or infinite value; V7: 2 rows with"),
        ("beyond float32", "Amount: 1 row with a missing, NaN or infinite value"),
        ("labels not 0 or 1", "Class: 2 rows with a value that is not 0 or 1"),
        ("text column", "columns must be numbers, but V5 is string"),
        ("no rows", "the table has no rows"),
    ],
)
def test_both_engines_refuse_a_hostile_table_with_the_same_reason(spark, tmp_path, name, reason):
    from training.generate import sample_features

    table = _parquet(tmp_path / "t", _hostile(name, _arrow(*sample_features(40, 2, fraud_rate=0.1))), files=2)
    with pytest.raises(TableRefusedError) as by_numpy:
        numpy_engine.read(table, COLUMNS)
    with pytest.raises(TableRefusedError) as by_spark:
        spark_engine.read(spark, str(table), COLUMNS)
    assert reason in by_spark.value.reason
    assert by_spark.value.reason == by_numpy.value.reason


def test_a_delta_table_without_the_delta_source_says_what_to_do(spark, bank_table, tmp_path):
    delta = tmp_path / "delta_table"
    delta.mkdir()
    for part in bank_table.iterdir():
        (delta / part.name).write_bytes(part.read_bytes())
    (delta / "_delta_log").mkdir()
    (delta / "_delta_log" / "00000000000000000000.json").write_text("{}\n")
    with pytest.raises(TableRefusedError) as refused:
        spark_engine.read(spark, str(delta), COLUMNS)  # auto: _delta_log makes it Delta
    assert "has no Delta Lake source: run the client on Databricks" in refused.value.reason
    assert "delta-spark" in refused.value.reason
    with pytest.raises(TableRefusedError, match="is a Delta table: read it with --engine spark"):
        numpy_engine.read(delta, COLUMNS)


def test_both_engines_hold_out_the_same_most_recent_rows_and_judge_a_model_alike(spark, tmp_path):
    """With the contract's event time in the table, the last fifth of its span is held out of training by the
    same rule in both engines, and a model's loss and AUC on those rows agree (Spark's AUC exact, as NumPy's)."""
    from training.generate import sample_features

    x, y = sample_features(3000, 12, fraud_rate=0.05)
    times = np.random.default_rng(2).uniform(0, 172_800, len(x))
    table = _arrow(x, y).append_column("Time", pa.array(times))
    path = _parquet(tmp_path / "timed", table)
    columns = Columns(COLUMNS.features, COLUMNS.label, "Time")
    reference = numpy_engine.read(path, columns)
    engine = spark_engine.read(spark, str(path), columns)
    try:
        held = int((times > times.max() - 0.2 * (times.max() - times.min())).sum())
        assert reference.holdout_rows == engine.holdout_rows == held and 400 < held < 800
        assert reference.rows == engine.rows == len(x) - held and reference.frauds == engine.frauds
        scaler = lr.scaler_from(reference.statistics())
        params = lr.train_local(lr.initial(len(FEATURES)), scaler, reference.x, reference.y, steps=5)
        mine, theirs = reference.evaluate(params, scaler), engine.evaluate(params, scaler)
        assert theirs["loss"] == pytest.approx(mine["loss"], abs=1e-6) and 0 < mine["loss"] < 1
        assert theirs["auc"] == pytest.approx(mine["auc"], abs=1e-9) and mine["auc"] > 0.8
        np.testing.assert_allclose(engine.statistics()["sum"], reference.statistics()["sum"], rtol=1e-6)
    finally:
        engine.close()
