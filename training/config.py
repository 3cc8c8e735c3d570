"""A run's parameters: what the steps read of ``TrainingConfig``, explicit so tests and benchmarks can vary it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.domain.config import TrainingConfig
    from shared.domain.settings import Settings


@dataclass(frozen=True)
class TrainConfig:
    """What a run needs from the training config; explicit so tests can vary it."""

    cost_fn: float = 10.0
    cost_fp: float = 1.0
    seed: int = 42
    num_boost_round: int = 1500
    pr_auc_margin: float = 0.01
    search_trials: int = 20
    search_seconds: float = 180.0
    budget_seconds: float = 600.0
    window_rows: int | None = None
    window_days: float | None = None
    compare_families: bool = True
    max_bin: int = 4095
    search_rows: int = 250_000  # distributed runs: the search sample's rows

    @classmethod
    def from_config(cls, config: TrainingConfig) -> TrainConfig:
        return cls(
            config.cost_fn,
            config.cost_fp,
            config.train_seed,
            config.train_num_boost_round,
            config.promotion_pr_auc_margin,
            config.train_search_trials,
            config.train_search_seconds,
            config.train_time_budget_seconds,
            config.train_window_rows,
            config.train_window_days,
            config.train_compare_families,
            config.train_max_bin,
            config.train_search_rows,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> TrainConfig:
        """The same, from the whole settings (tests and benchmarks that hold them)."""
        return cls.from_config(settings.training)
