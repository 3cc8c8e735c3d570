"""Issue 39, finding 1: the copies that keep a customer's clear id (landed files in any format the ETL takes,
whole files the ETL refused, refused label rows) are found by the right of access and removed by erasure.

Before: a refused file went to ``quarantine/<dataset>/files/`` unchanged and access found 0 records there;
erasure searched ``raw/`` with a byte regex, so a landed ``.csv.gz`` or ``.parquet`` was neither deleted nor
listed; a refused label row kept every column of the bank's export."""

from __future__ import annotations

import gzip
import io

import pyarrow as pa
import pyarrow.parquet as pq

from shared.domain.pseudonym import for_settings
from shared.etl.labels import ingest_labels
from shared.etl.service import run_etl
from shared.governance.gdpr import access, erase

FEATURES = [f"V{i}" for i in range(1, 29)] + ["Amount"]
HEADER = ["Time", *FEATURES, "Class", "transaction_id", "customer_id"]


def _rows(customers: list[str], prefix: str) -> list[list[object]]:
    return [[t, *([0.1] * 28), 5.0, 0, f"{prefix}-{t}", c] for t, c in enumerate(customers, start=1)]


def _csv(rows: list[list[object]]) -> bytes:
    return ("\n".join(",".join(map(str, r)) for r in [HEADER, *rows]) + "\n").encode()


def _parquet(rows: list[list[object]]) -> bytes:
    table = pa.table({name: [r[i] for r in rows] for i, name in enumerate(HEADER)})
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=2)  # several row groups: searched one at a time
    return out.getvalue()


def test_landed_files_in_every_format_and_refused_files_are_found_and_erased(store, settings):
    p = for_settings(settings)
    store.put_bytes("raw", "day1.csv.gz", gzip.compress(_csv(_rows(["ann", "ben", "joanne"], "gz"))))
    store.put_bytes("raw", "day2.parquet", _parquet(_rows(["ben", "ann", "ben", "joanne", "ann"], "pq")))
    for name in ("day1.csv.gz", "day2.parquet"):
        assert run_etl(store, settings.etl, name=name).status == "processed"
    # a file the ETL refuses whole (no Class column): moved to quarantine as sent, clear ids and all
    refused = b"Time,Amount,customer_id\n1,5.0,ann\n2,7.0,ben\n"
    store.put_bytes("raw", "broken.csv", refused)
    rejected = run_etl(store, settings.etl, name="broken.csv")
    assert rejected.status == "rejected" and rejected.quarantine
    found = access(store, p, " ann ", actor="test", dataset="creditcard")  # the id as a person may type it
    where = found.summary()["where"]
    assert where["raw/day1.csv.gz"] == 1 and where["raw/day2.parquet"] == 2
    assert where[rejected.quarantine] == 1  # the refused file's line, found by the clear id
    assert all("joanne" not in str(r) for rows in found.records.values() for r in rows)  # a whole field only
    outcome = erase(store, p, "ann", actor="test", dataset="creditcard")
    assert outcome.raw_deleted == 3  # both landed files (processed) and the refused file
    assert store.list_names("raw") == [] and not store.list_names("quarantine", rejected.quarantine.split("/", 1)[1])
    assert access(store, p, "ann", actor="test", dataset="creditcard").count == 0


def test_a_landed_parquet_not_processed_yet_is_named_pending_and_read_by_ranges(store, settings, monkeypatch):
    monkeypatch.setattr("shared.governance.clear_copies.WHOLE_BYTES", 0)  # every file is "large" here
    p = for_settings(settings)
    store.put_bytes("raw", "later.parquet", _parquet(_rows(["ann", "ben"] * 50, "late")))
    whole = []
    for method in ("get_bytes", "download_chunks"):  # a Parquet file is read by ranges, never downloaded whole
        real = getattr(store, method)
        setattr(store, method, lambda c, n, *a, _real=real, **k: whole.append(n) or _real(c, n, *a, **k))
    found = access(store, p, "ann", actor="test", dataset="creditcard")
    assert found.summary()["where"] == {"raw/later.parquet": 50}
    assert "later.parquet" not in whole
    outcome = erase(store, p, "ann", actor="test", dataset="creditcard")
    assert outcome.raw_pending == ["later.parquet"] and store.list_names("raw") == ["later.parquet"]


def test_a_refused_label_row_keeps_only_a_label_s_columns(store, settings):
    labels = (
        "transaction_id,label,labelled_at,customer_id\n"
        "t-1,1,2026-12-01T10:00:00Z,ann-clear-0001\n"
        "t-2,7,2026-12-01T10:00:00Z,ben-clear-0002\n"  # label 7: refused
        "t-3,1,2026-12-01T10:00:00Z,carol-clear-0003,extra\n"  # wrong field count: refused
    )
    store.put_bytes("raw", "labels/l.csv", labels.encode())
    outcome = ingest_labels(store, name="labels/l.csv")
    assert outcome.rows_quarantined == 2
    quarantined = store.get_bytes("quarantine", outcome.quarantine.removeprefix("quarantine/"))[0].decode()
    assert "t-2" in quarantined and "withheld" in quarantined and "line 4 of labels/l.csv" in quarantined
    assert "clear" not in quarantined  # neither the refused row's customer nor the unsplittable row's


def test_access_reads_the_pseudonymised_records_in_pieces_never_whole(store, settings, monkeypatch):
    """Issue 39, finding 5: every blob was read whole inside the request (a large file exhausted the instance).
    Parquet records are read by ranges, a row group at a time, their key column first; line files in download
    chunks; none is downloaded whole, and what is found is the same."""
    import json

    monkeypatch.setattr("shared.governance.clear_copies.WHOLE_BYTES", 0)  # past it: by ranges, a group at a time
    p = for_settings(settings)
    ann, ben = p("ann"), p("ben")
    table = pa.table(
        {
            "transaction_id": [f"p-{i}" for i in range(40)],
            "customer_id": [ann if i % 8 == 0 else ben for i in range(40)],
            "probability": [0.5] * 40,
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=5)
    store.put_bytes("predictions", "date=2026-12-01/a.parquet", out.getvalue())
    alerts = "".join(json.dumps({"customer_id": c, "n": i}) + "\n" for i, c in enumerate([ben, ann, ben, ann, ben]))
    store.put_bytes("alerts", "date=2026-12-01/a.jsonl", alerts.encode())
    whole = []
    real = store.get_bytes
    store.get_bytes = lambda c, n, _real=real: whole.append(f"{c}/{n}") or _real(c, n)
    found = access(store, p, "ann", actor="test", dataset="creditcard")
    assert found.summary()["where"] == {"alerts/date=2026-12-01/a.jsonl": 2, "predictions/date=2026-12-01/a.parquet": 5}
    assert [r["n"] for r in found.records["alerts/date=2026-12-01/a.jsonl"]] == [1, 3]
    assert not [n for n in whole if n.startswith(("predictions/", "alerts/"))], whole


def test_after_a_key_rotation_access_and_erasure_find_the_customer_under_every_key(store, settings):
    """Issue 39, finding 3: rotating the pseudonym key orphaned every record stored under the old one. With the
    old key among the previous keys, access finds both pseudonyms' records and erasure removes them, also when
    it is resumed without the clear id (the request keeps the customer's pseudonyms, never the id)."""
    from shared.adapters import erasures
    from shared.domain.pseudonym import pseudonymiser
    from shared.governance.gdpr import request_erasure, resume_erasures

    before, after = pseudonymiser("old secret"), pseudonymiser("v2:new secret", '["old secret"]')
    table = pa.table(
        {
            "transaction_id": ["a-1", "a-2", "b-1"],
            "customer_id": [before("ann"), after("ann"), after("ben")],
        }
    )
    out = io.BytesIO()
    pq.write_table(table, out)
    store.put_bytes("predictions", "date=2026-12-01/r.parquet", out.getvalue())
    assert access(store, before, "ann", actor="t", dataset="creditcard").count == 1  # the old key alone: half
    assert access(store, after, "ann", actor="t", dataset="creditcard").count == 2
    pseudonym = request_erasure(store, after, "ann", dataset="creditcard")
    assert erasures.aliases(store, pseudonym) == (after("ann"), before("ann"))
    [done] = resume_erasures(store, after, actor="t", dataset="creditcard")  # the instance lost: no clear id
    assert done.records_removed == 2
    left = pq.read_table(io.BytesIO(store.get_bytes("predictions", store.list_names("predictions")[0])[0]))
    assert left.column("transaction_id").to_pylist() == ["b-1"]


def test_a_customer_erased_before_a_key_rotation_stays_out_of_later_files(store, settings):
    """Review of issue 39: after a rotation the exclusion list held the pseudonym the erasure saw, while the ETL
    hashed new rows with the new key, so an erased customer's next file came back into training."""
    from pydantic import SecretStr

    from shared.domain.pseudonym import pseudonymiser

    old = settings.etl.model_copy(update={"customer_pseudonym_key": SecretStr("old secret")})
    store.put_bytes("raw", "before.csv", _csv(_rows(["ann", "ben"], "b")))
    assert run_etl(store, old, name="before.csv").rows_valid == 2
    erase(store, pseudonymiser("old secret"), "ann", actor="t", dataset="creditcard")
    rotated = settings.etl.model_copy(
        update={
            "customer_pseudonym_key": SecretStr("v2:new secret"),
            "customer_pseudonym_previous_keys": SecretStr('["old secret"]'),
        }
    )
    store.put_bytes("raw", "after.csv", _csv(_rows(["ann", "ben", "ann"], "a")))
    outcome = run_etl(store, rotated, name="after.csv")
    assert (outcome.rows_valid, outcome.rows_erased) == (1, 2)  # ben's row only; ann's two dropped
