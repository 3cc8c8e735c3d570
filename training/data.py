"""Training data: a curated dataset version from Blob, split by time into train, validation and test."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.contract import DatasetContract
from shared.domain.errors import BlobNotFoundError
from shared.etl.manifest import files_of_version, read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from shared.adapters.storage import BlobStore

SPLIT = (0.6, 0.2, 0.2)


def numeric_columns(contract: DatasetContract) -> list[str]:
    return [c for c in contract.names if contract.column(c).dtype != "string"]


def load_files(store: BlobStore, files: list[str], columns: list[str]) -> pd.DataFrame:
    """Curated Parquet files, in order, as one DataFrame of ``columns``."""
    import pandas as pd
    import pyarrow.parquet as pq

    tables = [pq.read_table(io.BytesIO(store.get_bytes("curated", f)[0]), columns=columns) for f in files]
    return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def load_dataset(
    store: BlobStore, contract: DatasetContract, version: str | None = None
) -> tuple[str, list[str], pd.DataFrame]:
    """A dataset version (latest by default) as one DataFrame, with its version and files."""
    version, files = files_of_version(store, contract.name, version)
    return version, files, load_files(store, files, numeric_columns(contract))


def newest_files(store: BlobStore, dataset: str, files: list[str] | None = None) -> list[str]:
    """The parts of the most recently ingested source file (of ``files``, when given), in their order."""
    manifest, _ = read_manifest(store, dataset)
    entries = [f for f in manifest["files"] if files is None or f["path"] in files]
    if not entries:
        raise BlobNotFoundError(f"dataset {dataset} has no curated data yet; run the ETL first")
    newest = max(entries, key=lambda f: (f["ingested_at"], f["path"]))
    ingest = (newest["ingested_at"], newest["source_blob"], newest["source_etag"])
    return [str(f["path"]) for f in entries if (f["ingested_at"], f["source_blob"], f["source_etag"]) == ingest]


def time_split(
    frame: pd.DataFrame,
    time_column: str,
    fractions: tuple[float, float, float] = SPLIT,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Earliest part to train, then validation, then test, by ``time_column``; boundaries recorded."""
    ordered = frame.sort_values(time_column, kind="stable").reset_index(drop=True)
    n = len(ordered)
    a = int(n * fractions[0])
    b = int(n * (fractions[0] + fractions[1]))
    train, valid, test = ordered.iloc[:a], ordered.iloc[a:b], ordered.iloc[b:]
    boundaries: dict[str, Any] = {"column": time_column, "fractions": list(fractions)}
    for name, part in (("train", train), ("valid", valid), ("test", test)):
        boundaries[name] = [float(part[time_column].min()), float(part[time_column].max()), len(part)]
    return train, valid, test, boundaries


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Features as a C-contiguous float32 matrix, the ONNX model's input type."""
    return np.ascontiguousarray(frame[features].to_numpy(dtype=np.float32))
