"""Curated Parquet files as DataFrames and matrices (drift checks); a retrain reads its window (``training.window``)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from shared.domain import layout
from shared.domain.contract import DatasetContract
from shared.domain.errors import BlobNotFoundError
from shared.etl.manifest import read_manifest

if TYPE_CHECKING:
    import pandas as pd

    from shared.adapters.storage import BlobStore


def numeric_columns(contract: DatasetContract) -> list[str]:
    return [c for c in contract.names if contract.column(c).dtype != "string"]


def load_files(store: BlobStore, files: list[str], columns: list[str]) -> pd.DataFrame:
    """Curated Parquet files, in order, as one DataFrame of ``columns``."""
    import pandas as pd
    import pyarrow.parquet as pq

    tables = [pq.read_table(io.BytesIO(store.get_bytes(layout.CURATED, f)[0]), columns=columns) for f in files]
    return pd.concat([t.to_pandas() for t in tables], ignore_index=True)


def newest_files(store: BlobStore, dataset: str, files: list[str] | None = None) -> list[str]:
    """The parts of the most recently ingested source file (of ``files``, when given), in their order."""
    manifest, _ = read_manifest(store, dataset)
    entries = [f for f in manifest.files if files is None or f.path in files]
    if not entries:
        raise BlobNotFoundError(f"dataset {dataset} has no curated data yet; run the ETL first")
    newest = max(entries, key=lambda f: (f.ingested_at, f.path))
    ingest = (newest.ingested_at, newest.source_blob, newest.source_etag)
    return [f.path for f in entries if (f.ingested_at, f.source_blob, f.source_etag) == ingest]


def matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """Features as a C-contiguous float32 matrix, the ONNX model's input type."""
    return np.ascontiguousarray(frame[features].to_numpy(dtype=np.float32))
