"""One set of row rules: the same bad rows through the API (JSON and CSV), the stream, batch scoring and the ETL.

Each path must refuse exactly the same rows (``shared.domain.rows`` is the one home of the rules);
before it was, `fraudops score` scored a negative Amount that the API refused and the stream dead-lettered.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow.csv as pacsv
import pytest

from api.decode import InvalidRequestError, decode_csv, decode_json
from cli.devtools.models import publish_synthetic_model
from shared.domain.contracts import get_contract
from shared.etl.transform import transform_file
from shared.scoring.batch import score_file
from shared.streaming.events import StreamEvent

CREDITCARD = get_contract("creditcard")

FEATURES = CREDITCARD.feature_names
GOOD = {"Time": 10.0, **dict.fromkeys(FEATURES, 0.5)}
# (what is wrong, the row's changes); the good row is index 0
CASES = [
    ("good", {}),
    ("negative Amount", {"Amount": -2.0}),
    ("negative Time", {"Time": -1.0}),
    ("missing feature", {"V3": None}),
    ("beyond float32", {"V7": 1e39}),
    ("id too long", {"transaction_id": "x" * 65}),
    ("good again", {"V1": -3.25}),
]
BAD = {i for i, (what, _) in enumerate(CASES) if not what.startswith("good")}


def _rows() -> list[dict]:
    return [{"transaction_id": f"t{i}", **GOOD, **change} for i, (_, change) in enumerate(CASES)]


def _csv(rows: list[dict], *, label: bool = False) -> str:
    names = ["transaction_id", "Time", *FEATURES] + (["Class"] if label else [])
    lines = [",".join(names)]
    for r in rows:
        values = {**r, "Class": 0}
        lines.append(
            ",".join(
                "" if values.get(n) is None else repr(values[n]) if n != "transaction_id" else values[n] for n in names
            )
        )
    return "\n".join(lines) + "\n"


def _refused_by_api(decode, body: bytes) -> set[int]:
    with pytest.raises(InvalidRequestError) as caught:
        decode(body, CREDITCARD, max_batch=1000)
    return {e["row"] for e in caught.value.errors}


def test_api_json_and_csv_refuse_the_bad_rows():
    body = json.dumps({"transactions": _rows()}).encode()
    assert _refused_by_api(decode_json, body) == BAD
    assert _refused_by_api(decode_csv, _csv(_rows()).encode()) == BAD


def test_stream_dead_letters_the_bad_rows(store, settings, tmp_path):
    from shared.bootstrap import bootstrap
    from shared.streaming.processor import StreamProcessor

    publish_synthetic_model(store, settings.model_name, version="r1", trees=10, seed=1)
    processor = StreamProcessor(store, bootstrap(settings).scorer, CREDITCARD, spool_dir=tmp_path / "spool")
    when = datetime(2026, 12, 1, 8, tzinfo=UTC)
    events = [StreamEvent(json.dumps(r).encode(), "0", i, when) for i, r in enumerate(_rows())]
    processor.process(events)
    dead = [
        json.loads(line)
        for name in store.list_names("deadletter")
        for line in store.get_bytes("deadletter", name)[0].splitlines()
    ]
    assert {d["sequence_number"] for d in dead} == BAD


def test_batch_scoring_gives_the_bad_rows_a_reason_and_no_score(store, settings, tmp_path):
    from shared.bootstrap import bootstrap

    publish_synthetic_model(store, settings.model_name, version="r1", trees=10, seed=1)
    src = tmp_path / "in.csv"
    src.write_text(_csv(_rows()))
    summary = score_file(src, tmp_path / "out.csv", bootstrap(settings).scorer, CREDITCARD)
    out = pacsv.read_csv(tmp_path / "out.csv").to_pylist()
    refused = {i for i, row in enumerate(out) if row["error"]}
    assert refused == BAD and summary.unscorable == len(BAD)
    assert out[1]["error"] == "Amount is negative (-2.0)" and out[1]["fraud_probability"] is None
    assert all(out[i]["fraud_probability"] is not None for i in set(range(len(out))) - BAD)


def test_etl_quarantines_the_bad_rows(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text(_csv(_rows(), label=True))
    r = transform_file(src, CREDITCARD, out_dir=tmp_path / "out", quarantine_path=tmp_path / "q.csv")
    quarantined = {row["line"] - 2 for row in pacsv.read_csv(tmp_path / "q.csv").to_pylist()}  # line 2 is row 0
    assert quarantined == BAD and r.rows_valid == len(CASES) - len(BAD)
