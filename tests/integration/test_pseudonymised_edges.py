"""Customer ids pseudonymised at the ETL edge: curated Parquet and quarantined rows hold the pseudonym, and a
line that cannot be split into columns is withheld rather than quarantined with a clear id in it."""

from __future__ import annotations

import io

import pyarrow.parquet as pq

from shared.domain.pseudonym import for_settings
from shared.etl.service import run_etl

HEADER = ",".join(["Time", *(f"V{i}" for i in range(1, 29)), "Amount", "Class", "transaction_id", "customer_id"])


def _row(t: int, amount: float, customer: str) -> str:
    return ",".join([str(t), *(["0.1"] * 28), str(amount), "0", f"tx-{t}", customer])


def test_the_etl_never_writes_a_clear_customer_id(store, settings):
    lines = [HEADER, _row(1, 10.0, "alice-0001"), _row(2, 12.5, "bob-0002"), _row(3, -5.0, "carol-0003")]
    lines.append("4,0.1,0.2,dave-0004")  # wrong field count: cannot be split into the file's columns
    store.put_bytes("raw", "customers.csv", ("\n".join(lines) + "\n").encode())
    outcome = run_etl(store, settings.etl, name="customers.csv")
    assert outcome.rows_valid == 2 and outcome.rows_quarantined == 2
    p = for_settings(settings)
    [part] = outcome.outputs
    table = pq.read_table(io.BytesIO(store.get_bytes("curated", part.removeprefix("curated/"))[0]))
    assert table.column("customer_id").to_pylist() == [p("alice-0001"), p("bob-0002")]
    quarantined = store.get_bytes("quarantine", outcome.quarantine.removeprefix("quarantine/"))[0].decode()
    assert p("carol-0003") in quarantined  # the row that broke a rule, with its pseudonym
    assert "withheld: the line could not be split into columns" in quarantined
    for clear in ("alice", "bob", "carol", "dave"):
        assert clear not in quarantined
        assert all(clear.encode() not in store.get_bytes(c, n)[0] for c in ("reports",) for n in store.list_names(c))
