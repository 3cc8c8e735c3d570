"""The ETL follows a contract's types: categories dictionary-encoded, nulls kept where nullable, times in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shared.domain.contract_file import parse_contract
from shared.etl.transform import transform_file

CONTRACT = parse_contract(
    """
name: typed
time_zone: Europe/Paris
roles:
  event_time: ts
  label: {column: y}
  transaction_id: tx
  entities: {customer: who}
columns:
  - {name: tx, type: string}
  - {name: ts, type: timestamp}
  - {name: who, type: string, personal: true, nullable: true}
  - {name: amount, type: float, minimum: 0}
  - {name: items, type: integer, minimum: 1, nullable: true}
  - {name: kind, type: categorical, categories: [a, b, c]}
  - {name: shop, type: categorical, nullable: true, max_chars: 4}
  - {name: present, type: boolean}
  - {name: y, type: integer, allowed: [0, 1]}
""",
    "typed.yaml",
)
HEADER = "tx,ts,who,amount,items,kind,shop,present,y\n"
GOOD = [
    "t1,2026-10-24T14:00:00+02:00,ann,10.5,2,a,s1,true,0\n",
    "t2,2026-10-25T02:30:00+01:00,,3,,b,,false,1\n",  # nulls where nullable
    "t3,2026-10-25T01:00:00Z,bob,0,1,c,s2,1,0\n",
]
BAD = {
    "t4,2026-10-24T14:00:00,ann,1,1,a,s1,true,0\n": "ts is not an ISO 8601 time with a UTC offset (2026-10-24T14:00",
    "t5,2026-10-24T14:00:00Z,ann,1,1,d,s1,true,0\n": "kind must be one of a, b, c (got d)",
    "t6,2026-10-24T14:00:00Z,ann,1,1.5,a,s1,true,0\n": "items is not a whole number (1.5)",
    "t7,2026-10-24T14:00:00Z,ann,1,1,a,s1,maybe,0\n": "present is not true or false (maybe)",
    "t8,2026-10-24T14:00:00Z,ann,,1,a,s1,true,0\n": "amount is empty",
    "t9,2026-10-24T14:00:00Z,ann,1,1,,s1,true,0\n": "kind is empty",
    "t10,2026-10-24T14:00:00Z,ann,1,1,a,shop5,true,0\n": "shop is longer than 4 characters",
    "t11,2026-04-31T14:00:00Z,ann,1,1,a,s1,true,0\n": "ts is not a valid time (2026-04-31T14:00:00Z)",
    "t12,2026-10-24T14:00:00Z,ann,1,0,a,s1,true,0\n": "items is below 1 (0.0)",
}


def _run(tmp_path: Path, body: str):
    src = tmp_path / "in.csv"
    src.write_text(HEADER + body)
    result = transform_file(src, CONTRACT, out_dir=tmp_path / "out", quarantine_path=tmp_path / "q.csv")
    tables = [pq.read_table(p.path) for p in result.parts]
    q = tmp_path / "q.csv"
    return result, pa.concat_tables(tables), q.read_text() if q.exists() else ""


def test_good_rows_are_stored_typed_and_each_bad_row_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    result, table, quarantined = _run(tmp_path, "".join(GOOD) + "".join(BAD))

    assert result.rows_valid == 3 and result.rows_quarantined == len(BAD)
    for reason in BAD.values():
        assert reason in quarantined, reason
    schema = table.schema
    assert schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert schema.field("kind").type == pa.dictionary(pa.int32(), pa.string())
    assert schema.field("items").type == pa.int64() and schema.field("present").type == pa.bool_()
    assert table.column("ts").to_pylist() == [
        datetime(2026, 10, 24, 12, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    ]
    assert table.column("items").to_pylist() == [2, None, 1]
    assert table.column("shop").to_pylist() == ["s1", None, "s2"]
    assert table.column("present").to_pylist() == [True, False, True]
    assert table.column("kind").to_pylist() == ["a", "b", "c"]


def test_a_personal_column_is_pseudonymised_in_the_parts_and_in_the_quarantine(tmp_path: Path) -> None:
    _, table, quarantined = _run(tmp_path, GOOD[0] + next(iter(BAD)))

    stored = table.column("who").to_pylist()[0]
    assert stored != "ann" and stored.startswith("cust_")
    assert ",ann," not in quarantined and stored in quarantined


def test_a_parquet_file_with_typed_columns_is_read_the_same_way(tmp_path: Path) -> None:
    _, from_csv, _ = _run(tmp_path, "".join(GOOD))
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table(
            {
                "tx": ["t1", "t2", "t3"],
                "ts": ["2026-10-24T14:00:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-25T01:00:00Z"],
                "who": ["ann", None, "bob"],
                "amount": [10.5, 3.0, 0.0],
                "items": pa.array([2, None, 1], pa.int64()),
                "kind": ["a", "b", "c"],
                "shop": ["s1", None, "s2"],
                "present": [True, False, True],
                "y": pa.array([0, 1, 0], pa.int8()),
            }
        ),
        src,
    )
    result = transform_file(src, CONTRACT, out_dir=tmp_path / "pout", quarantine_path=tmp_path / "pq.csv")

    assert result.rows_valid == 3
    from_parquet = pa.concat_tables([pq.read_table(p.path) for p in result.parts])
    assert from_parquet.schema == from_csv.schema and from_parquet.to_pylist() == from_csv.to_pylist()


@pytest.mark.parametrize("value", ["TRUE", "False", "0", " 1 "])
def test_booleans_are_read_in_any_case_and_as_digits(tmp_path: Path, value: str) -> None:
    row = f"t1,2026-10-24T14:00:00Z,ann,1,1,a,s1,{value},0\n"
    _, table, _ = _run(tmp_path, row)
    assert table.column("present").to_pylist() == [value.strip().lower() in ("true", "1")]
