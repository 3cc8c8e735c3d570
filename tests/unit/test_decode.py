"""The request decoder: the vectorised path and the pydantic path agree on what is valid."""

from __future__ import annotations

import json

import numpy as np
import pytest

from api.decode import BatchTooLargeError, InvalidRequestError, decode_csv, decode_json
from shared.domain.contracts import get_contract

CREDITCARD = get_contract("creditcard")


FEATURES = CREDITCARD.feature_names


def _row(i: int = 0, **over) -> dict:
    row = {"transaction_id": f"t{i}", "Time": float(i), **{f: 0.5 * k - 3 for k, f in enumerate(FEATURES)}}
    row.update(over)
    return row


def _body(rows, **top) -> bytes:
    return json.dumps({"transactions": rows, **top}).encode()


def test_good_rows_become_the_feature_matrix_in_contract_order():
    rows = [_row(0), _row(1, V3=7, Amount=0)]  # an int is a number
    batch = decode_json(_body(rows, model_version="v1", explain=True), CREDITCARD, max_batch=10)
    expected = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float32)
    assert np.array_equal(batch.x, expected) and batch.x.dtype == np.float32
    assert batch.ids == ["t0", "t1"] and batch.model_version == "v1" and batch.explain


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "valid number"),
        ("1.5", "valid number"),
        (None, "valid number"),
        (1e39, "less than or equal"),
        (10**400, "valid number"),
        ([1], "valid number"),
    ],
)
def test_values_that_are_not_usable_numbers_are_named(value, words):
    with pytest.raises(InvalidRequestError) as caught:
        decode_json(_body([_row(0), _row(1, V5=value)]), CREDITCARD, max_batch=10)
    assert {"row": 1, "field": "V5"} in [{k: e[k] for k in ("row", "field")} for e in caught.value.errors]
    assert any(words in e["msg"] for e in caught.value.errors), caught.value.errors


def test_missing_unknown_label_and_id_problems_are_named():
    rows = [
        {k: v for k, v in _row(0).items() if k != "V2"},
        _row(1, Class=1),
        _row(2, transaction_id="x" * 65),
        _row(3, Time=-1.0),
        "not an object",
    ]
    with pytest.raises(InvalidRequestError) as caught:
        decode_json(_body(rows), CREDITCARD, max_batch=10)
    named = {(e["row"], e["field"]) for e in caught.value.errors}
    assert {(0, "V2"), (1, "Class"), (2, "transaction_id"), (3, "Time"), (4, None)} <= named


def test_nan_literal_is_a_row_error_and_broken_json_is_400():
    raw = _body([_row(0)]).replace(b'"V1": -3.0', b'"V1": NaN')
    with pytest.raises(InvalidRequestError) as caught:
        decode_json(raw, CREDITCARD, max_batch=10)
    assert caught.value.status == 422 and caught.value.errors[0]["field"] == "V1"
    with pytest.raises(InvalidRequestError) as broken:
        decode_json(b'{"transactions": [', CREDITCARD, max_batch=10)
    assert broken.value.status == 400


def test_limits_and_empty():
    with pytest.raises(BatchTooLargeError, match="limit of 2"):
        decode_json(_body([_row(i) for i in range(3)]), CREDITCARD, max_batch=2)
    with pytest.raises(InvalidRequestError, match="non-empty"):
        decode_json(_body([]), CREDITCARD, max_batch=2)


def test_csv_matches_json():
    rows = [_row(i) for i in range(4)]
    header = list(rows[0])
    csv_body = (",".join(header) + "\n" + "".join(",".join(str(r[h]) for h in header) + "\n" for r in rows)).encode()
    from_csv = decode_csv(csv_body, CREDITCARD, max_batch=10)
    from_json = decode_json(_body(rows), CREDITCARD, max_batch=10)
    assert np.array_equal(from_csv.x, from_json.x) and from_csv.ids == from_json.ids


def test_the_typed_path_matches_the_general_path_on_good_input():
    from api.decode import matrix_from_rows
    from api.typed_json import decode_typed

    rows = [_row(i, customer_id=f"c{i % 3}") for i in range(50)] + [_row(50, Time=None), _row(51, V2=3)]
    rows[7].pop("Time")  # the time column is optional: absent or null
    typed = decode_typed(_body(rows, model_version="v2"), CREDITCARD, max_batch=100)
    assert typed is not None
    x, ids, version, explain, customers, times = typed
    general_x, general_ids = matrix_from_rows(rows, CREDITCARD)
    assert general_x is not None and np.array_equal(x, general_x) and ids == general_ids
    assert version == "v2" and explain is False
    # what the record of served predictions keeps: the customer as given, the time (NaN where absent)
    assert customers == [r.get("customer_id") for r in rows]
    expected_times = np.array([r.get("Time", np.nan) if r.get("Time") is not None else np.nan for r in rows])
    assert times is not None and np.array_equal(times, expected_times, equal_nan=True)
    general = decode_json(_body(rows), CREDITCARD, max_batch=100)
    assert general.customers == customers


@pytest.mark.parametrize(
    "bad",
    [
        {"V5": True},
        {"V5": "1.5"},
        {"V5": None},
        {"V5": 1e39},
        {"Time": -1.0},
        {"Class": 1},
        {"extra": 1},
        {"transaction_id": "x" * 65},
        {"Amount": -0.01},
    ],
)
def test_the_typed_path_hands_anything_off_to_the_precise_one(bad):
    from api.typed_json import decode_typed

    assert decode_typed(_body([_row(0), _row(1, **bad)]), CREDITCARD, max_batch=10) is None
    with pytest.raises(InvalidRequestError):
        decode_json(_body([_row(0), _row(1, **bad)]), CREDITCARD, max_batch=10)


def test_the_typed_path_refuses_missing_features_empty_and_oversized_batches():
    from api.typed_json import decode_typed

    missing = _row(1)
    del missing["V7"]
    assert decode_typed(_body([_row(0), missing]), CREDITCARD, max_batch=10) is None
    assert decode_typed(_body([]), CREDITCARD, max_batch=10) is None
    assert decode_typed(_body([_row(i) for i in range(11)]), CREDITCARD, max_batch=10) is None


def _csv(rows: list[dict]) -> bytes:
    header = list(dict.fromkeys(k for r in rows for k in r))
    return (
        ",".join(header) + "\n" + "".join(",".join(str(r.get(h, "")) for h in header) + "\n" for r in rows)
    ).encode()


def test_the_fast_csv_path_takes_good_bodies_with_empty_optional_cells():
    from api.decode import _csv_typed

    rows = [_row(0), _row(1, Time="", transaction_id=""), _row(2, V4=7)]
    fast = _csv_typed(_csv(rows), CREDITCARD, max_batch=10)
    assert fast is not None and fast.ids == ["t0", None, "t2"]
    expected = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float32)
    assert np.array_equal(fast.x, expected)


@pytest.mark.parametrize(
    "bad",
    [
        {"V5": ""},
        {"V5": "abc"},
        {"V5": "nan"},
        {"V5": "1e400"},
        {"Amount": -1},
        {"Class": 0},
        {"extra": 1},
        {"Time": -5},
    ],
)
def test_the_fast_csv_path_hands_anything_off_to_the_precise_one(bad):
    from api.decode import _csv_typed

    body = _csv([_row(0), _row(1, **bad)])
    assert _csv_typed(body, CREDITCARD, max_batch=10) is None
    with pytest.raises(InvalidRequestError):
        decode_csv(body, CREDITCARD, max_batch=10)


def test_a_big_csv_body_parsed_in_parallel_blocks_equals_the_single_threaded_parse():
    from api.decode import PARALLEL_CSV_BYTES, _csv_typed

    rng = np.random.default_rng(4)
    rows = [
        _row(i, **{f: float(v) for f, v in zip(FEATURES, rng.normal(size=len(FEATURES)), strict=True)})
        for i in range(1000)
    ]
    for i, row in enumerate(rows):
        row["Amount"] = float(i % 97)
    body = _csv(rows)
    assert len(body) > PARALLEL_CSV_BYTES  # the parallel branch
    fast = _csv_typed(body, CREDITCARD, max_batch=1000)
    assert fast is not None and fast.ids == [f"t{i}" for i in range(1000)]
    expected = np.array([[r[f] for f in FEATURES] for r in rows], dtype=np.float32)
    assert np.array_equal(fast.x, expected)
    bad = _csv([*rows[:-1], {**rows[-1], "V9": "oops"}])  # in the last block only
    assert _csv_typed(bad, CREDITCARD, max_batch=1000) is None
    with pytest.raises(InvalidRequestError) as caught:
        decode_csv(bad, CREDITCARD, max_batch=1000)
    assert [(e["row"], e["field"]) for e in caught.value.errors] == [(999, "V9")]
