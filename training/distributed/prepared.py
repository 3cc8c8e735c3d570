"""What the Dask engine's ``prepare`` hands on: ``Prepared`` for a window whose rows stay on the workers.

This process holds the search sample (as the ``window``), the whole window's layout, the test part's
narrow columns (``TestPart``: labels, times, files, amounts, never the features) and up to
``EVAL_ROWS`` test rows with their features (``x_test_sample``, for the parity check and the explanations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain import drift
from shared.domain.errors import TrainingError
from training.inputs import amount_of
from training.steps import Prepared

if TYPE_CHECKING:
    from training.distributed.source import Snapshot
    from training.window import Layout

EVAL_ROWS = 20_000  # test rows with their features, for the parity check and the explanations


@dataclass(frozen=True)
class TestPart:
    """The test part's narrow columns, in row order: what this process needs of every test row."""

    rows: np.ndarray  # positions in the window
    y: np.ndarray
    time: np.ndarray
    part: np.ndarray
    amount: np.ndarray | None


@dataclass(frozen=True)
class DistributedPrepared(Prepared):
    """``Prepared`` for a window on the workers: ``window`` is the search sample (its rows keep their positions in
    ``sample_rows``), ``plan`` the whole window's layout, ``test`` the test part's narrow columns and
    ``x_eval``/``eval_rows`` (``x_test_sample``) up to ``EVAL_ROWS`` test rows with their features."""

    snapshot: Snapshot | None = None
    window_rows: int = 0
    lengths: tuple[int, ...] = ()
    offsets: tuple[int, ...] = ()
    sample_rows: np.ndarray | None = None
    sample_plan: Layout | None = None
    test: TestPart | None = None
    x_eval: np.ndarray | None = None
    eval_rows: np.ndarray | None = None

    @property
    def rows(self) -> int:
        return self.window_rows

    @property
    def y_test(self) -> np.ndarray:
        """Every test row's label (the features of those rows stay on the workers)."""
        return need(self.test).y

    @property
    def x_test(self) -> np.ndarray:
        """Not here: the test part's features stay on the workers (``x_test_sample`` holds up to ``EVAL_ROWS``)."""
        raise TrainingError("the distributed run's test features stay on the workers: use x_test_sample")

    @property
    def x_test_sample(self) -> np.ndarray:
        """Up to ``EVAL_ROWS`` test rows with their features (parity, explanations)."""
        return need(self.x_eval)

    @property
    def y_test_sample(self) -> np.ndarray:
        """The labels of ``x_test_sample``."""
        test = need(self.test)
        return test.y[np.searchsorted(test.rows, need(self.eval_rows))]

    @property
    def test_time(self) -> np.ndarray:
        return need(self.test).time

    @property
    def test_files(self) -> np.ndarray:
        files: np.ndarray = np.asarray(self.window.files, dtype=object)
        return np.asarray(files[need(self.test).part])

    def test_amount(self, features: list[str]) -> np.ndarray | None:
        """Only the amount is brought back from the workers (the segments' bands)."""
        return need(self.test).amount if amount_of(features) is not None else None

    def training_profile(self, features: list[str]) -> dict[str, Any]:
        """The drift reference from the search sample (a uniform sample of the window)."""
        return drift.profile(self.window.x, features)


def need[T](value: T | None) -> T:
    if value is None:
        raise TrainingError("the distributed run's prepared data is incomplete")
    return value
