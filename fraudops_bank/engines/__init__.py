"""Where the bank's rows are read and the local work is done: NumPy over a file, or Spark over a table.

An engine is built from the bank's data (already checked by ``fraudops_bank.rows``) and answers
the questions a round asks; the client never sees a row. When the table has the contract's event
time, the rows of the last fifth of its time span are held out of training (and of round 0's
statistics) so the bank can judge the served model, and a model of its own data alone, on rows
neither was fitted to; both engines choose them by the same rule.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from fraudops_bank.contract import Columns


class Engine(Protocol):
    """The local computations of one bank, over rows that never leave it."""

    @property
    def columns(self) -> Columns | None:
        """The table's columns the engine reads (None: numbered features of any names)."""
        ...

    @property
    def rows(self) -> int:
        """How many rows the bank trains on (the update's example count)."""
        ...

    @property
    def frauds(self) -> int:
        """How many of those rows are labelled fraud (label 1), for ``fraudops_bank.served.check_window``."""
        ...

    def statistics(self) -> dict[str, np.ndarray]:
        """Round 0's update: ``count``, ``sum`` and ``sumsq`` (as ``model.sufficient_statistics``)."""
        ...

    def train(
        self, start: dict[str, np.ndarray], scaler: dict[str, np.ndarray], *, steps: int
    ) -> dict[str, np.ndarray]:
        """A model round's update: ``steps`` of gradient descent from ``start`` (as ``model.train_local``)."""
        ...

    def log_loss(self, params: dict[str, np.ndarray], scaler: dict[str, np.ndarray]) -> float:
        """The local log loss of ``params`` (the metric sent with the update)."""
        ...

    @property
    def holdout_rows(self) -> int:
        """Rows held out of training to evaluate on: the most recent (``HOLDOUT_SHARE`` of the time span)."""
        ...

    def evaluate(self, params: dict[str, np.ndarray], scaler: dict[str, np.ndarray]) -> dict[str, float]:
        """``loss`` and (with both classes) ``auc`` of ``params`` on the held-out rows; empty without them."""
        ...


HOLDOUT_SHARE = 0.2  # of the window's time span: the rows after it are held out


def holdout_cutoff(first: float, last: float) -> float | None:
    """Rows after this time are held out (the last ``HOLDOUT_SHARE`` of the span); ``None`` for an empty span."""
    if not (np.isfinite(first) and np.isfinite(last)) or last <= first:
        return None
    return float(last - HOLDOUT_SHARE * (last - first))
