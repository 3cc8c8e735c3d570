"""Curated Parquet files as matrices (drift checks); a retrain reads its window (``training.window``)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from shared.domain import layout
from shared.domain.contract import DatasetContract
from shared.domain.errors import BlobNotFoundError
from shared.etl.manifest import read_manifest

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.encoding import Encoding


def newest_files(store: BlobStore, dataset: str, files: list[str] | None = None) -> list[str]:
    """The parts of the most recently ingested source file (of ``files``, when given), in their order."""
    manifest, _ = read_manifest(store, dataset)
    entries = [f for f in manifest.files if files is None or f.path in files]
    if not entries:
        raise BlobNotFoundError(f"dataset {dataset} has no curated data yet; run the ETL first")
    newest = max(entries, key=lambda f: (f.ingested_at, f.path))
    ingest = (newest.ingested_at, newest.source_blob, newest.source_etag)
    return [f.path for f in entries if (f.ingested_at, f.source_blob, f.source_etag) == ingest]


def coded_matrix(
    store: BlobStore, files: list[str], contract: DatasetContract, encoding: Encoding | None
) -> np.ndarray:
    """Curated files' features as the model reads them: float32, missing as NaN, a boolean as 1 or 0, and a
    category as its code in ``encoding`` (a model's vocabularies; a category it does not know is NaN)."""
    import pyarrow.parquet as pq

    from training.window import codes, floats

    features = contract.feature_names
    vocabularies = encoding.vocabularies if encoding is not None else {}
    parts = []
    for f in files:
        table = pq.read_table(io.BytesIO(store.get_bytes(layout.CURATED, f)[0]), columns=features)
        x = np.empty((table.num_rows, len(features)), dtype=np.float32)
        for j, name in enumerate(features):
            column = table.column(name)
            x[:, j] = codes(vocabularies[name], column) if name in vocabularies else floats(column)
        parts.append(x)
    return np.ascontiguousarray(np.concatenate(parts)) if parts else np.empty((0, len(features)), np.float32)
