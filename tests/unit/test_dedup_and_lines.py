"""The bounded-memory duplicate set and the line-number arithmetic, against plain references."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from shared.etl.dedup import SeenHashes, row_hashes
from shared.etl.source import line_numbers


def test_seen_hashes_matches_a_python_set_across_batches():
    rng = np.random.default_rng(0)
    seen, reference = SeenHashes(), set()
    for _ in range(40):
        batch = rng.integers(0, 5_000, size=rng.integers(0, 700)).astype(np.uint64)
        keep = seen.first_seen(batch)
        expected = np.zeros(batch.size, dtype=bool)
        for i, h in enumerate(batch.tolist()):
            if h not in reference:
                reference.add(h)
                expected[i] = True
        np.testing.assert_array_equal(keep, expected)
    assert len(seen) == len(reference)


def test_row_hashes_equal_for_equal_rows_and_differ_otherwise():
    table = pa.table({"a": [1.0, 1.0, 1.0, -0.5], "b": [2.0, 2.0, 3.0, 2.0], "c": pa.array([0, 0, 0, 0], pa.int8())})
    h = row_hashes(table)
    assert h[0] == h[1]
    assert len({int(h[0]), int(h[2]), int(h[3])}) == 3
    swapped = pa.table({"a": [2.0], "b": [1.0], "c": pa.array([0], pa.int8())})
    assert row_hashes(swapped)[0] != h[0]


def test_line_numbers_match_a_brute_force_walk():
    rng = np.random.default_rng(1)
    total_lines = 500
    skipped = np.sort(rng.choice(np.arange(2, total_lines + 2), size=80, replace=False))
    kept = [n for n in range(2, total_lines + 2) if n not in set(skipped.tolist())]
    got = np.concatenate([line_numbers(s, min(50, len(kept) - s), skipped, 2) for s in range(0, len(kept), 50)])
    np.testing.assert_array_equal(got, kept)
