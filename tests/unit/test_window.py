"""The training window: newest files first within its limits, time order by ingestion then Time, one
float32 matrix built from Arrow, a layout whose every part is later than what it is fitted on."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.domain.contracts import get_contract
from shared.domain.errors import TrainingError
from shared.etl.manifest import CuratedFile, add_files
from training.window import TEST_FRACTION, layout, load_window

CREDITCARD = get_contract("creditcard")

FEATURES = CREDITCARD.feature_names


def _part(store, name: str, rows: int, *, seed: int, ingested_at: str, fraud_every: int = 50, shuffled=False) -> None:
    rng = np.random.default_rng(seed)
    times = np.arange(rows, dtype=np.float64)
    if shuffled:
        rng.shuffle(times)
    columns = {"Time": times}
    columns.update({f: rng.standard_normal(rows) for f in FEATURES})
    columns["Class"] = (np.arange(rows) % fraud_every == 0).astype(np.int8)
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    data = buffer.getvalue()
    store.put_bytes("curated", name, data)
    entry = CuratedFile(name, rows, len(data), "0" * 64, f"raw/{name}", '"e"', ingested_at)
    add_files(store, "creditcard", [entry])


@pytest.fixture
def three_days(memory_store):
    _part(memory_store, "creditcard/d1.parquet", 3000, seed=1, ingested_at="2026-11-01T00:00:00+00:00")
    _part(memory_store, "creditcard/d2.parquet", 3000, seed=2, ingested_at="2026-11-10T00:00:00+00:00", shuffled=True)
    _part(memory_store, "creditcard/d3.parquet", 3000, seed=3, ingested_at="2026-11-11T00:00:00+00:00")
    return memory_store


def test_rows_are_ordered_by_ingestion_then_time_within_a_file(three_days):
    """Kaggle's Time restarts at 0 in every file: sorting by Time alone would interleave the days."""
    w = load_window(three_days, CREDITCARD)
    assert w.rows == 9000 and w.files == ["creditcard/d1.parquet", "creditcard/d2.parquet", "creditcard/d3.parquet"]
    assert np.all(np.diff(w.part) >= 0)
    for k in range(3):
        assert np.all(np.diff(w.time[w.part == k]) >= 0)
    assert w.x.dtype == np.float32 and w.x.flags.c_contiguous and w.x.shape == (9000, len(FEATURES))
    # the shuffled file's rows were reordered with their own features and labels
    raw = pq.read_table(io.BytesIO(three_days.get_bytes("curated", "creditcard/d2.parquet")[0])).to_pandas()
    expected = raw.sort_values("Time")
    assert np.allclose(w.x[w.part == 1][:, 0], expected[FEATURES[0]].to_numpy(dtype=np.float32))
    assert np.array_equal(w.y[w.part == 1], expected["Class"].to_numpy())


def test_the_window_keeps_the_newest_files_within_its_row_and_day_limits(three_days):
    by_rows = load_window(three_days, CREDITCARD, max_rows=5000)
    assert by_rows.files == ["creditcard/d2.parquet", "creditcard/d3.parquet"] and by_rows.left_out == 1
    by_days = load_window(three_days, CREDITCARD, max_days=3)
    assert by_days.files == ["creditcard/d2.parquet", "creditcard/d3.parquet"]
    assert load_window(three_days, CREDITCARD, max_rows=1).files == ["creditcard/d3.parquet"]  # never empty


def test_loading_holds_about_one_matrix_not_three_copies(memory_store):
    for k in range(4):
        _part(memory_store, f"creditcard/p{k}.parquet", 40_000, seed=k, ingested_at=f"2026-11-0{k + 1}T00:00:00+00:00")
    tracemalloc.start()
    w = load_window(memory_store, CREDITCARD)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    matrix = w.x.nbytes
    assert matrix == 160_000 * len(FEATURES) * 4
    assert peak < 2.0 * matrix, f"peak {peak / 1e6:.1f} MB for a {matrix / 1e6:.1f} MB matrix"


def test_the_layout_puts_every_validation_block_after_its_training_rows_and_test_last(three_days):
    w = load_window(three_days, CREDITCARD)
    plan = layout(w)
    assert plan.dev_stop == int(w.rows * (1 - TEST_FRACTION))
    stops = [0]
    for fold in plan.folds:
        assert stops[-1] < fold.train_stop < fold.valid_stop <= plan.dev_stop
        stops.append(fold.train_stop)
    assert plan.folds[-1].valid_stop == plan.dev_stop
    described = plan.describe(w.time)
    assert described["test"][2] == w.rows - plan.dev_stop and len(described["folds"]) == 3


def test_a_part_with_one_class_is_refused_with_the_reason(memory_store):
    _part(
        memory_store, "creditcard/few.parquet", 3000, seed=1, ingested_at="2026-11-01T00:00:00+00:00", fraud_every=10**6
    )
    w = load_window(memory_store, CREDITCARD)
    with pytest.raises(TrainingError, match="has only one class") as caught:
        layout(w)
    assert "more labelled data is needed" in caught.value.reason


def test_an_erased_customer_s_rows_never_reach_the_window(memory_store):
    """An ETL that raced an erasure can still have written the customer's rows: the window leaves them out."""
    rows = 400
    columns = {"Time": np.arange(rows, dtype=np.float64), **{f: np.full(rows, 0.5) for f in FEATURES}}
    columns["Class"] = (np.arange(rows) % 20 == 0).astype(np.int8)
    columns["customer_id"] = [f"cust_{'a' * 32}" if i % 4 == 0 else f"cust_{'b' * 32}" for i in range(rows)]
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    memory_store.put_bytes("curated", "creditcard/raced.parquet", buffer.getvalue())
    add_files(
        memory_store,
        "creditcard",
        [CuratedFile("creditcard/raced.parquet", rows, 1, "0" * 64, "raw/r", '"e"', "2026-12-01T00:00:00+00:00")],
    )
    assert load_window(memory_store, CREDITCARD).rows == rows
    window = load_window(memory_store, CREDITCARD, erased=frozenset({f"cust_{'a' * 32}"}))
    assert window.rows == rows - rows // 4 and np.all(window.time % 4 != 0)
