"""The bank package alone: the columns the server names, what importing it costs the server, its reader, its CLI."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from fraudops_bank.contract import Columns
from fraudops_bank.engines import numpy as numpy_engine
from fraudops_bank.engines.spark import _kind
from fraudops_bank.errors import ParametersError, TableRefusedError
from shared.domain.contracts import get_contract
from tests.conftest import ROOT

COLUMNS = Columns(tuple(get_contract("creditcard").feature_names), get_contract("creditcard").roles.label)
FEATURES, LABEL = COLUMNS.features, COLUMNS.label


def test_the_columns_come_from_the_servers_metadata_and_hostile_names_are_refused():
    meta = {"features": list(FEATURES), "label": LABEL}
    assert Columns.from_metadata(meta) == COLUMNS
    hostile = [
        ({}, "names no features and label"),
        ({"features": "V1", "label": LABEL}, "names no features and label"),
        ({"features": ["V1", "a.b"], "label": LABEL}, "cannot be a table's"),  # Spark would read a nested field
        ({"features": ["`x` + 1"], "label": LABEL}, "cannot be a table's"),
        ({"features": [3], "label": LABEL}, "cannot be a table's"),
        ({"features": [], "label": LABEL}, "between 1 and"),
        ({"features": ["V1", "V1"], "label": LABEL}, "a column twice"),
        ({"features": ["V1", LABEL], "label": LABEL}, "a column twice"),
    ]
    for bad, reason in hostile:
        with pytest.raises(ParametersError, match=reason):
            Columns.from_metadata(bad)


def test_a_table_of_another_contract_is_refused_naming_its_columns(tmp_path):
    columns = Columns(("amount", "hour"), "is_fraud")
    pacsv.write_csv(pa.table({"amount": [1.0, 2.0], "is_fraud": [0, 1]}), tmp_path / "t.csv")
    with pytest.raises(TableRefusedError, match=r"lacks column hour .*amount, hour, and the label is_fraud"):
        numpy_engine.read(tmp_path / "t.csv", columns)
    pacsv.write_csv(pa.table({"amount": [1.0, 2.0], "hour": [3.0, 4.0], "is_fraud": [0, 1]}), tmp_path / "t.csv")
    engine = numpy_engine.read(tmp_path / "t.csv", columns)
    assert engine.x.shape == (2, 2) and engine.columns == columns


def _imported_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    return {m.split(".")[0] for m in out.split()}


def test_the_protocol_the_server_imports_needs_neither_httpx_nor_spark():
    """The Function app ships without httpx or PySpark: the modules it imports from the package must not need them."""
    server_side = "import shared.federated.rounds, shared.federated.auth, shared.federated.export, api.federated"
    assert not {"httpx", "pyspark", "py4j"} & _imported_by(server_side)
    assert not {"numpy", "httpx"} & _imported_by("import fraudops_bank")  # the package itself imports nothing


def _rows(tmp_path):
    from training.generate import sample_features

    x, y = sample_features(300, 4, fraud_rate=0.1)
    table = pa.table({**{f: x[:, j].astype(np.float64) for j, f in enumerate(FEATURES)}, LABEL: y.astype(np.int64)})
    pacsv.write_csv(table, tmp_path / "rows.csv")
    pq.write_table(table, tmp_path / "rows.parquet")
    (tmp_path / "dir").mkdir()
    pq.write_table(table.slice(0, 100), tmp_path / "dir" / "a.parquet")
    pq.write_table(table.slice(100), tmp_path / "dir" / "b.parquet")
    return x, y


def test_csv_parquet_and_a_parquet_directory_read_the_same_float32_rows(tmp_path):
    x, y = _rows(tmp_path)
    for path in ("rows.csv", "rows.parquet", "dir"):
        engine = numpy_engine.read(tmp_path / path, COLUMNS)
        assert engine.x.dtype == np.float32 and engine.y.dtype == np.int8, path
        np.testing.assert_array_equal(engine.x, x)
        np.testing.assert_array_equal(engine.y, y)


def test_the_numpy_reader_names_what_it_cannot_read(tmp_path):
    with pytest.raises(TableRefusedError, match="does not exist"):
        numpy_engine.read(tmp_path / "nothing.parquet", COLUMNS)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(TableRefusedError, match=r"cannot read .* as CSV or Parquet"):
        numpy_engine.read(tmp_path / "junk.parquet", COLUMNS)


@pytest.mark.parametrize(
    ("table", "kind"),
    [
        ("main.bank.transactions", "table"),
        ("transactions", "table"),
        ("/Volumes/main/bank/raw/transactions", "parquet"),
        ("abfss://data@bank.dfs.core.windows.net/transactions", "parquet"),
        ("dbfs:/mnt/transactions", "parquet"),
    ],
)
def test_the_spark_engine_tells_a_table_name_from_a_path(table, kind):
    assert _kind(table, "auto") == kind
    assert _kind(table, "delta") == "delta"


def test_both_commands_take_the_same_flags():
    from cli.main import EVERYWHERE, build_parser
    from fraudops_bank.run import build_parser as bank_parser

    def flags(parser: argparse.ArgumentParser, *path: str) -> set[str]:
        for name in path:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[name]
        return {s for a in parser._actions for s in a.option_strings} - {"-h", "--help"}

    client = flags(bank_parser(), "client")
    assert client == flags(build_parser(), "federated", "client") - EVERYWHERE  # fraudops: on every command
    assert {"--engine", "--table", "--data", "--format", "--key-vault-url"} <= client


def test_the_lock_is_hashed_and_within_the_packages_ranges():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "fraudops_bank" / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in (*project["dependencies"], *project["optional-dependencies"]["keyvault"])]
    text = (ROOT / "fraudops_bank" / "requirements.lock").read_text()
    blocks = [b for b in text.split("\n") if b and not b[0].isspace() and not b.startswith("#")]
    pins = dict(line.split(" ")[0].split("==") for line in blocks)
    assert all("--hash=sha256:" in chunk for chunk in text.split("==")[1:])
    for req in wanted:
        assert req.specifier.contains(pins[req.name], prereleases=False), (req, pins.get(req.name))
    assert "pyspark" not in pins and "lightgbm" not in pins and "mlflow-skinny" not in pins


def test_the_simulation_reads_a_file_with_the_deployments_contract_columns(tmp_path):
    """``fraudops federated simulate --data PATH``: the bank client's reader, with the dataset contract's columns."""
    from cli.simulate import _data

    x, y = _rows(tmp_path)
    got_x, got_y = _data(tmp_path / "rows.csv", 0, 0, "creditcard")
    np.testing.assert_array_equal(got_x, x)
    np.testing.assert_array_equal(got_y, y)
    with pytest.raises(TableRefusedError, match="lacks column"):
        _data(tmp_path / "rows.csv", 0, 0, "card_transactions")  # another dataset's columns are not there
