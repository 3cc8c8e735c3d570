"""The training window as a Dask DataFrame whose partitions are the curated parts, read by the workers.

The run pins its window once, from the manifest (``training.window.plan_window``): a dataset version,
its files oldest first and their row counts. Every later read, on any worker, reads exactly those
files: curated parts are written once under new names, so a part that is still there is the part that
was pinned, and a newer manifest version (another ETL, an erasure) changes nothing the run reads. A
part that is gone (an erasure rewrote it and deleted the old one) or whose row count differs from the
pinned one fails the run with ``DatasetChangedError``: it is never half-read.

Each partition is one part, in time order (ingestion, then the event time within the part, as
``load_window`` orders it), with the rows of erased customers dropped by the same ``read_part``.
Columns: the contract's features (float32: a number or boolean as ``load_window`` reads it, missing as
NaN, a category as its code in the window's vocabulary), the label (int8), the time (float64 seconds),
``_part`` (the index of the file) and, once the lengths are known, ``_row`` (the row's position in the
whole window).

The vocabularies are the whole window's, learnt as ``load_window`` learns them: each worker counts its
part's categories in the order it meets them (``category_counts``), and the driver merges the parts in
window order (``merge_counts``), so both paths give every category the same code.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain import layout
from shared.domain.contract import DatasetContract
from shared.domain.encoding import Encoding
from shared.domain.errors import TrainingError

if TYPE_CHECKING:
    import dask.dataframe as dd
    import pandas as pd

log = logging.getLogger(__name__)

PART, ROW = "_part", "_row"


class DatasetChangedError(TrainingError):
    """A part of the run's pinned dataset version changed or disappeared while the run read it."""


@dataclass(frozen=True)
class Snapshot:
    """The window a distributed run trains on, pinned at its start."""

    dataset: DatasetContract  # the contract itself: a worker knows no uploaded contract by name
    version: str
    files: tuple[str, ...]
    counts: tuple[int, ...]  # rows per file as the manifest has them (-1: unknown)
    left_out: int
    erased: frozenset[str]
    behaviour: tuple[Any, ...] = ()  # per part, its behavioural features (a scattered array, file row order)


def contract_of(dataset: DatasetContract | str) -> DatasetContract:
    """The contract a worker was given (or, by name, a shipped one)."""
    from shared.domain.contracts import get_contract

    return dataset if isinstance(dataset, DatasetContract) else get_contract(dataset)


def _pinned_part(
    item: tuple[int, str, int], *, options: dict[str, Any], dataset: DatasetContract | str, erased: frozenset[str]
) -> Any:
    """One pinned part's table (``read_part``), straight from Blob with ``adlfs``, checked against the pin."""
    import pyarrow.parquet as pq
    from adlfs import AzureBlobFileSystem

    from training.window import read_part

    _, path, expected = item
    contract = contract_of(dataset)
    fs = AzureBlobFileSystem(**options)
    try:
        data = fs.cat_file(layout.display(layout.CURATED, path))
    except FileNotFoundError:
        raise DatasetChangedError(
            f"curated part {path} of the run's dataset version is gone (an erasure rewrote it, or a retention rule "
            "deleted it) while the run read it; nothing is published, and the next run reads the current version"
        ) from None
    source = pq.ParquetFile(io.BytesIO(data))
    if expected >= 0 and source.metadata.num_rows != expected:
        raise DatasetChangedError(
            f"curated part {path} has {source.metadata.num_rows} rows where the run's dataset version has "
            f"{expected}; nothing is published"
        )
    return read_part(source, contract, erased)


def read_one(
    item: tuple[int, str, int],
    *,
    options: dict[str, Any],
    dataset: DatasetContract | str,
    erased: frozenset[str],
    labels_only: bool,
    encoding: Encoding | None = None,
    behaviour: np.ndarray | None = None,
) -> pd.DataFrame:
    """One pinned part, on a worker, time-ordered: its labels, or its typed columns (categories by ``encoding``)
    with, for a contract that declares them, its behavioural features (``behaviour``: computed point in time
    over the whole window by the driver, in the part's file order)."""
    import pandas as pd

    from training.window import codes, floats, seconds

    contract = contract_of(dataset)
    table = _pinned_part(item, options=options, dataset=dataset, erased=erased)
    label, time_col = contract.label, contract.time_column
    assert label is not None and time_col is not None  # read_part refused a contract without them
    t = seconds(table.column(time_col.name))
    order = np.argsort(t, kind="stable")
    columns: dict[str, Any] = {label.name: table.column(label.name).to_numpy().astype(np.int8)[order]}
    if not labels_only:
        vocabularies = encoding.vocabularies if encoding is not None else {}
        for name in contract.feature_names:
            column = table.column(name)
            values = codes(vocabularies[name], column) if name in vocabularies else floats(column)
            columns[name] = np.asarray(values, dtype=np.float32)[order]
        if behaviour is not None:
            for j, name in enumerate(contract.behaviour.names()):
                columns[name] = np.asarray(behaviour[:, j], dtype=np.float32)[order]
        columns[time_col.name] = t[order]
        columns = {k: columns[k] for k in [*contract.model_features, label.name, time_col.name]}
    out = pd.DataFrame(columns)
    out[PART] = np.int32(item[0])
    return out


def category_counts(
    item: tuple[int, str, int], *, options: dict[str, Any], dataset: DatasetContract | str, erased: frozenset[str]
) -> dict[str, list[tuple[str, int]]]:
    """On a worker: each categorical feature's values in one part, in the order met, with their row counts."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from shared.domain.encoding import categorical_features

    contract = contract_of(dataset)
    table = _pinned_part(item, options=options, dataset=dataset, erased=erased)
    out = {}
    for name in categorical_features(contract):
        arr = table.column(name).combine_chunks()
        if not pa.types.is_dictionary(arr.type):
            arr = pc.dictionary_encode(arr)
        indices = arr.indices.drop_null().to_numpy().astype(np.int64)
        counts = np.bincount(indices, minlength=len(arr.dictionary))
        out[name] = [(v, int(c)) for v, c in zip(arr.dictionary.to_pylist(), counts, strict=True)]
    return out


def merge_counts(contract: Any, parts: list[dict[str, list[tuple[str, int]]]]) -> Encoding:
    """The window's encoding from the parts' counts, in window order: ``load_window``'s vocabularies."""
    from shared.domain.encoding import categorical_features, learn_vocabulary

    vocabularies = {}
    for name in categorical_features(contract):
        seen: dict[str, int] = {}
        for part in parts:
            for value, count in part.get(name, []):
                seen[value] = seen.get(value, 0) + count
        values = list(seen)
        vocabularies[name] = learn_vocabulary(contract, name, values, np.asarray([seen[v] for v in values]))
    return Encoding(tuple(contract.model_features), vocabularies)


def _meta(dataset: DatasetContract | str, *, labels_only: bool) -> pd.DataFrame:
    import pandas as pd

    contract = contract_of(dataset)
    assert contract.label is not None and contract.time_column is not None
    columns: dict[str, Any] = {contract.label.name: np.int8}
    if not labels_only:
        columns = {name: np.float32 for name in contract.model_features}
        columns.update({contract.label.name: np.int8, contract.time_column.name: np.float64})
    columns[PART] = np.int32
    return pd.DataFrame({k: pd.Series(dtype=v) for k, v in columns.items()})


def frame(
    snapshot: Snapshot, options: dict[str, Any], *, labels_only: bool = False, encoding: Encoding | None = None
) -> dd.DataFrame:
    """The pinned window, one partition per part (nothing is read until a computation asks)."""
    import dask.dataframe as dd

    items = [(i, path, count) for i, (path, count) in enumerate(zip(snapshot.files, snapshot.counts, strict=True))]
    if snapshot.behaviour and not labels_only:
        return dd.from_map(
            _read_with_behaviour,
            items,
            list(snapshot.behaviour),
            options=options,
            dataset=snapshot.dataset,
            erased=snapshot.erased,
            encoding=encoding,
            meta=_meta(snapshot.dataset, labels_only=False),
            divisions=None,
            label=f"read-{snapshot.version}",
            enforce_metadata=False,
        )
    return dd.from_map(
        read_one,
        items,
        options=options,
        dataset=snapshot.dataset,
        erased=snapshot.erased,
        labels_only=labels_only,
        encoding=encoding,
        meta=_meta(snapshot.dataset, labels_only=labels_only),
        divisions=None,
        label=f"read-{snapshot.version}",
        enforce_metadata=False,
    )


def _read_with_behaviour(item: tuple[int, str, int], behaviour: np.ndarray, **kwargs: Any) -> pd.DataFrame:
    """``read_one`` with the part's behavioural features (a scattered array, resolved by the scheduler)."""
    return read_one(item, labels_only=False, behaviour=behaviour, **kwargs)


def with_rows(parts: dd.DataFrame, offsets: list[int]) -> dd.DataFrame:
    """``parts`` with ``_row``: each row's position in the window (``offsets``: the first row of each part)."""
    meta = parts._meta.assign(**{ROW: np.int64(0)}).iloc[:0]
    return parts.map_partitions(_add_rows, offsets, meta=meta, enforce_metadata=False)


def _add_rows(part: pd.DataFrame, offsets: list[int], partition_info: dict[str, Any] | None = None) -> pd.DataFrame:
    number = int(part[PART].iloc[0]) if len(part) else (partition_info or {}).get("number", 0)
    start = offsets[number]
    return part.assign(**{ROW: np.arange(start, start + len(part), dtype=np.int64)})
