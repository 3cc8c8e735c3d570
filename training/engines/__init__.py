"""Where a retraining run's rows live: one instance, or a Dask cluster. Two engines behind one interface.

The pipeline (``training.pipeline``) asks ``engine_for`` for the engine a window needs, then calls its
``prepare`` and ``fit`` and hands their typed values (``training.steps``) to the steps both share:
export, the gate and publish (``training.finish``). ``local`` holds the window in this process;
``dask`` keeps it on the workers of a Dask cluster (``training.distributed`` connects and reads). Neither
engine imports the pipeline, and the pipeline imports neither engine's internals, only this interface.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from shared.adapters.model_store import ModelStore
    from shared.adapters.storage import BlobStore
    from shared.domain.config import StorageConfig, TrainingConfig
    from shared.domain.contract import DatasetContract
    from training.config import TrainConfig
    from training.gate import ChampionScorer
    from training.steps import Fitted, Prepared


class Engine(Protocol):
    """``prepare`` then ``fit`` a run's window, and score the champion on its test part, wherever the rows are."""

    distributed: bool

    def prepare(self, dataset_version: str | None, run_config: TrainConfig) -> Prepared:
        """Pin and load the window, lay it out by time (folds in dev, then the test part), and check drift."""
        ...

    def fit(self, prepared: Prepared, run_config: TrainConfig, *, deadline: float) -> Fitted:
        """Search, choose the threshold, fit the backtest and published models, the baseline and the families."""
        ...

    def champion_scorer(self, prepared: Prepared, models: ModelStore) -> ChampionScorer:
        """What the gate calls for a champion's probabilities on the test part."""
        ...


@contextlib.contextmanager
def engine_for(
    store: BlobStore, contract: DatasetContract, *, config: TrainingConfig, storage: StorageConfig, rows: int
) -> Iterator[Engine]:
    """The engine for a window of ``rows`` rows: Dask when ``training.distributed.cluster.needed`` says so
    (connected for the ``with`` block), this instance otherwise."""
    from training.distributed.cluster import needed

    if needed(config, rows):
        from training.distributed.cluster import connect
        from training.engines.dask import DaskEngine

        with connect(config) as client:
            yield DaskEngine(client=client, store=store, config=config, storage=storage, contract=contract)
        return
    from training.engines.local import LocalEngine

    yield LocalEngine(store=store, config=config, contract=contract)
