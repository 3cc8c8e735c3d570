"""Exact-duplicate detection across a whole file in bounded memory.

Each valid row is reduced to a 64-bit hash of its values (a SplitMix64-style mix of every
column's bits); seen hashes live in a few sorted NumPy runs merged like a binary counter, so
a file of n rows costs 8n bytes and O(n log n) time. The chance that two different rows
collide is about n^2 / 2^65: 2e-9 for the 284,807-row Kaggle file, 6e-7 for 4.7 million rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from shared.etl.arrays import floats, integers

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(h: np.ndarray) -> np.ndarray:
    h ^= h >> np.uint64(30)
    h *= _M1
    h ^= h >> np.uint64(27)
    h *= _M2
    h ^= h >> np.uint64(31)
    return h


def row_hashes(table: pa.Table) -> np.ndarray:
    """A 64-bit hash per row over every column's exact value."""
    h = np.zeros(table.num_rows, dtype=np.uint64)
    for i, col in enumerate(table.columns):
        if pa.types.is_floating(col.type) or (pa.types.is_integer(col.type) and col.null_count):
            bits = np.ascontiguousarray(floats(col)).view(np.uint64)
        elif pa.types.is_integer(col.type):
            bits = integers(col).astype(np.uint64)
        else:
            bits = np.array([hash(x) for x in col.to_pylist()], dtype=np.int64).view(np.uint64)
        with np.errstate(over="ignore"):
            h = _mix(h ^ (bits + _GOLDEN * np.uint64(i + 1)))
    return h


class SeenHashes:
    """A set of uint64 hashes as sorted runs; ``first_seen`` marks rows not seen before."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(r.size for r in self._runs)

    def first_seen(self, hashes: np.ndarray) -> np.ndarray:
        """Boolean mask: True for a row whose hash is new (first occurrence in this batch too)."""
        keep = np.zeros(hashes.size, dtype=bool)
        if hashes.size == 0:
            return keep
        uniq, first = np.unique(hashes, return_index=True)
        new = np.ones(uniq.size, dtype=bool)
        for run in self._runs:
            pos = np.searchsorted(run, uniq).clip(max=run.size - 1)
            new &= run[pos] != uniq
        keep[first[new]] = True
        self._add(uniq[new])
        return keep

    def _add(self, sorted_unique: np.ndarray) -> None:
        if sorted_unique.size == 0:
            return
        self._runs.append(sorted_unique)
        while len(self._runs) > 1 and self._runs[-1].size >= self._runs[-2].size:
            top = self._runs.pop()
            self._runs[-1] = np.sort(np.concatenate([self._runs[-1], top]), kind="stable")
