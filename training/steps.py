"""The typed values the retraining steps hand each other, whichever engine ran them.

``prepare`` returns ``Prepared`` (the window in time order, its layout, its drift), ``fit`` returns
``Fitted`` (the chosen configuration, its threshold, the backtest and published models and the figures
beside them), ``export`` returns ``Exported`` (ONNX and its parity). The Dask engine's ``Prepared``
(``training.distributed.prepared``) keeps the rows on the workers and answers the same questions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain import drift
from training.inputs import amount_of, categorical_of

if TYPE_CHECKING:
    from training.explain import Explanations
    from training.families import FamilyResult
    from training.model import Model
    from training.monitoring import DriftReport
    from training.search import SearchResult
    from training.window import Layout, Window


@dataclass(frozen=True)
class Prepared:
    """The training window in time order, its layout (folds in dev, then the test part), and its drift."""

    window: Window
    plan: Layout
    split: dict[str, Any]
    drift: DriftReport

    @property
    def dataset_version(self) -> str:
        return self.window.dataset_version

    @property
    def files(self) -> list[str]:
        return self.window.files

    @property
    def x_dev(self) -> np.ndarray:
        return self.window.x[: self.plan.dev_stop]

    @property
    def y_dev(self) -> np.ndarray:
        return self.window.y[: self.plan.dev_stop]

    @property
    def x_test(self) -> np.ndarray:
        return self.window.x[self.plan.dev_stop :]

    @property
    def y_test(self) -> np.ndarray:
        return self.window.y[self.plan.dev_stop :]

    @property
    def x_test_sample(self) -> np.ndarray:
        """The test rows whose features this process holds (parity, explanations): here, all of them."""
        return self.x_test

    @property
    def y_test_sample(self) -> np.ndarray:
        """The labels of ``x_test_sample``."""
        return self.y_test

    @property
    def rows(self) -> int:
        return self.window.rows

    @property
    def test_time(self) -> np.ndarray:
        return self.window.time[self.plan.dev_stop :]

    def test_amount(self, features: list[str]) -> np.ndarray | None:
        """The test part's amounts (the contract's amount role), ``None`` when the features hold none."""
        index = amount_of(features)
        return None if index is None else np.asarray(self.x_test[:, index], dtype=np.float64)

    def training_profile(self, features: list[str]) -> dict[str, Any]:
        """The drift reference: each feature's bins over the window."""
        return drift.profile(self.window.x, features, categorical=categorical_of(features))

    @property
    def test_files(self) -> np.ndarray:
        """Each test row's curated file (the gate compares a champion only on rows it never trained on)."""
        files: np.ndarray = np.asarray(self.window.files, dtype=object)
        return np.asarray(files[self.window.part[self.plan.dev_stop :]])


@dataclass(frozen=True)
class Fitted:
    """The chosen configuration, its cost-chosen threshold, the backtest and published boosters, and the
    figures beside them: the logistic baseline, the family comparison and the explanations."""

    found: SearchResult
    threshold: float
    curve: list[dict[str, float]]
    backtest: Model
    backtest_rounds: int
    backtest_test_probabilities: np.ndarray
    published: Model
    published_rounds: int
    baseline_metrics: dict[str, float]
    baseline_test_probabilities: np.ndarray
    comparison: list[FamilyResult]
    explanations: Explanations


@dataclass(frozen=True)
class Exported:
    """The published booster as ONNX and its parity with LightGBM on the test part."""

    onnx_bytes: bytes
    parity: float
