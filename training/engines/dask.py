"""The Dask engine: ``prepare`` and ``fit`` by the single-node rules, with the rows on the Dask workers.

What stays the same as on one instance: the window and its time order, the layout (folds in the oldest
80 %, the newest 20 % held out), the configuration search on rolling-origin folds, the threshold of least
business cost on the folds' out-of-fold probabilities, the backtest model (the configuration fitted on
every dev row, measured once on every test row) and the published model (refitted on every row, with
the boosting rounds scaled to its size), then the steps both engines share (``training.finish``): the
ONNX export, parity check, gate and publish.

What differs, and why:

* **The search runs on a sample.** Each Optuna trial is several fits; on a cluster each would be a
  LightGBM network set up and torn down on every worker. The search, the threshold, the derived columns,
  the logistic baseline's fit and the family comparison run in this process on a time-ordered uniform
  sample of ``TRAIN_SEARCH_ROWS`` rows of the window (every row, when the window is smaller: then the
  folds, the search and the threshold are exactly the single-node path's). ``rounds_for`` scales each
  fold's best round to the full dev part and the full window, as it scales the sample's folds on one
  instance.
* **The two fits are LightGBM's data-parallel training** (``lightgbm.dask.DaskLGBMClassifier``): each
  worker bins and holds only its own parts; the booster comes back with ``to_local()``. They run their
  fixed number of rounds: a deadline that stopped one worker's boosting before another's would leave
  the other waiting on the network, so ``TRAIN_TIME_BUDGET_SECONDS`` bounds the search only.
* **The test part is scored where it lies.** The new model, the baseline and the champion score the
  test rows on the workers; this process receives their probabilities, labels, times, amounts and
  files (a few numbers a row, never the features), plus up to ``EVAL_ROWS`` test rows with their
  features for the parity check and the explanations.

This process holds one byte a row of the whole window (the labels, to lay out the folds), the search
sample, and the test part's narrow columns. A worker that leaves during a fit (killed, out of memory,
preempted) fails the run with the reason; nothing is published, and the failure report says why.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.domain.encoding import Encoding
from shared.domain.errors import BlobNotFoundError, ModelIntegrityError, ModelNotAvailableError, TrainingError
from training.distributed import workers
from training.distributed.prepared import EVAL_ROWS, DistributedPrepared, TestPart, need
from training.distributed.source import PART, ROW, Snapshot, category_counts, frame, merge_counts, with_rows
from training.inputs import Features
from training.steps import Fitted, Prepared
from training.window import Window, check_classes, cut, layout, plan_window

if TYPE_CHECKING:
    import dask.dataframe as dd
    import lightgbm as lgb
    from distributed import Client

    from shared.adapters.model_store import ModelStore
    from shared.adapters.storage import BlobStore
    from shared.domain.config import StorageConfig, TrainingConfig
    from shared.domain.contract import DatasetContract
    from shared.scoring.derived import Derived
    from training.config import TrainConfig
    from training.gate import ChampionScorer
    from training.model import Model
    from training.search import SearchResult

log = logging.getLogger(__name__)

WATCH_SECONDS = 0.5
NETWORK_TIMEOUT_MINUTES = 10  # LightGBM's own socket timeout between workers


class WorkerLostError(TrainingError):
    """A Dask worker left the cluster while LightGBM trained on it."""


class DaskEngine:
    """``prepare``, ``fit`` and the champion's scoring of a run whose rows are on the Dask cluster of ``client``."""

    callbacks: tuple[Any, ...] = ()  # LightGBM callbacks of both fits, run on the workers (tests slow a fit down)

    distributed = True

    def __init__(
        self,
        *,
        client: Client,
        store: BlobStore,
        config: TrainingConfig,
        storage: StorageConfig,
        contract: DatasetContract,
    ) -> None:
        from training.distributed.cluster import storage_options

        self.client, self.store, self.config, self.contract = client, store, config, contract
        self.options = storage_options(storage)
        self.features = contract.model_features
        if contract.label is None or contract.time_column is None:
            raise TrainingError(
                f"dataset {contract.name}: the Dask path needs a label and an event time (a window without time "
                "keeps its file order, which only one instance reads); lower TRAIN_WINDOW_ROWS to train it here"
            )
        self.label, self.time = contract.label.name, contract.time_column.name

    # -- prepare ---------------------------------------------------------------------------------------
    def prepare(self, dataset_version: str | None, run_config: TrainConfig) -> DistributedPrepared:
        """Pin the window, lay it out from its labels, and bring back the search sample and the test columns."""
        from shared.adapters.erasures import erased
        from training.monitoring import check_drift

        config = run_config
        version, all_files, files, counts = plan_window(
            self.store, self.contract, dataset_version, max_rows=config.window_rows, max_days=config.window_days
        )
        snapshot = Snapshot(
            self.contract, version, tuple(files), tuple(counts), len(all_files) - len(files), erased(self.store)
        )
        if not self.contract.behaviour.empty:
            snapshot = dataclasses.replace(snapshot, behaviour=self._behaviour(snapshot, all_files))
        labels = self._compute(frame(snapshot, self.options, labels_only=True), "reading the labels")
        y_all = labels[self.label].to_numpy(np.int8)
        lengths = tuple(int(n) for n in np.bincount(labels[PART].to_numpy(), minlength=len(files)))
        del labels
        offsets = tuple(int(o) for o in np.concatenate([[0], np.cumsum(lengths)[:-1]]))
        n = int(y_all.size)
        plan = cut(n)
        check_classes({name: (b - a, int(y_all[a:b].sum())) for name, (a, b) in plan.parts().items()}, n)
        del y_all
        encoding = self._encoding(snapshot)
        full = with_rows(frame(snapshot, self.options, encoding=encoding), list(offsets))
        fraction = min(1.0, config.search_rows / max(n, 1))
        test_rows = n - plan.dev_stop
        eval_fraction = min(1.0, EVAL_ROWS / max(test_rows, 1))
        boundaries = plan.boundaries()
        amount = self.contract.amount if self.contract.amount in self.features else None
        narrow = [ROW, self.label, self.time, PART, *([amount] if amount else [])]
        test = full[full[ROW] >= plan.dev_stop]
        sample_dd = full.map_partitions(workers.sample, fraction, config.seed, meta=full._meta)
        eval_dd = test.map_partitions(workers.sample, eval_fraction, config.seed + 1, meta=full._meta)
        bounds_dd = full[full[ROW].isin(boundaries)][[ROW, self.time]]
        sample, evaluation, bounds, test_columns = self._compute(
            (sample_dd, eval_dd, bounds_dd, test[narrow]), "reading the sample and the test part", many=True
        )
        window = Window(
            version,
            list(files),
            snapshot.left_out,
            np.ascontiguousarray(sample[self.features].to_numpy(np.float32)),
            sample[self.label].to_numpy(np.int8),
            sample[self.time].to_numpy(np.float64),
            sample[PART].to_numpy(np.int32),
            Features.of(self.contract),
            encoding,
        )
        sample_plan = layout(window)  # refuses a sample whose folds lack a class, with the reason
        times = dict(zip(bounds[ROW].tolist(), bounds[self.time].tolist(), strict=True))
        split = {**plan.describe(times), "column": self.time}
        split["files"], split["files_left_out"] = len(files), snapshot.left_out
        split["distributed"] = {"workers": len(self.client.nthreads()), "search_sample_rows": window.rows}
        test_columns = test_columns.sort_values(ROW)
        evaluation = evaluation.sort_values(ROW)
        log.info(
            "distributed window: %d rows in %d parts of %s on %d workers; search sample %d rows",
            n,
            len(files),
            version,
            len(self.client.nthreads()),
            window.rows,
        )
        return DistributedPrepared(
            window=window,
            plan=plan,
            split=split,
            drift=check_drift(self.store, config=self.config, files=list(files)),
            snapshot=snapshot,
            window_rows=n,
            lengths=lengths,
            offsets=offsets,
            sample_rows=sample[ROW].to_numpy(np.int64),
            sample_plan=sample_plan,
            test=TestPart(
                test_columns[ROW].to_numpy(np.int64),
                test_columns[self.label].to_numpy(np.int8),
                test_columns[self.time].to_numpy(np.float64),
                test_columns[PART].to_numpy(np.int32),
                test_columns[amount].to_numpy(np.float64) if amount else None,
            ),
            x_eval=np.ascontiguousarray(evaluation[self.features].to_numpy(np.float32)),
            eval_rows=evaluation[ROW].to_numpy(np.int64),
        )

    def _behaviour(self, snapshot: Snapshot, all_files: list[str]) -> tuple[Any, ...]:
        """Each part's behavioural features, computed here point in time over the window's history columns (and
        the older files' within the longest window), as ``load_window`` computes them, then scattered to the
        workers, one array a part: the same rows and the same numbers as a run on one instance."""
        from training.window import behaviour_by_part

        arrays = behaviour_by_part(self.store, self.contract, snapshot.erased, list(snapshot.files), all_files)
        return tuple(self.client.scatter(arrays))

    def _encoding(self, snapshot: Snapshot) -> Encoding:
        """The window's vocabularies, as ``load_window`` learns them: each part's categories counted on the
        workers, merged here in window order (no categorical feature: an empty encoding, read nowhere)."""
        from shared.domain.encoding import categorical_features

        if not categorical_features(self.contract):
            return Encoding(tuple(self.features))
        items = list(enumerate(zip(snapshot.files, snapshot.counts, strict=True)))
        futures = self.client.map(
            category_counts,
            [(i, path, count) for i, (path, count) in items],
            options=self.options,
            dataset=snapshot.dataset,
            erased=snapshot.erased,
            pure=False,
        )
        counted = self._watched(lambda: self.client.gather(futures), "counting the categories")
        return merge_counts(self.contract, list(counted))

    # -- fit -------------------------------------------------------------------------------------------
    def fit(self, prepared: Prepared, run_config: TrainConfig, *, deadline: float) -> Fitted:
        """Search on the sample; fit the backtest and published models on the workers; score the test part there."""
        from training.boosting import dataset_params
        from training.evaluation import evaluate
        from training.explain import explain
        from training.families import lightgbm_row
        from training.fitting import deadline_of_fits, families_and_baseline, search_and_threshold
        from training.model import derive

        p, config = _distributed(prepared), run_config
        w, plan, sample_plan = p.window, p.plan, need(p.sample_plan)
        features = self.features
        costs = {"cost_fn": config.cost_fn, "cost_fp": config.cost_fp}
        fits_deadline = deadline_of_fits(deadline, config)
        found, oof_y, curve, threshold = search_and_threshold(
            w, sample_plan, features, config, fits_deadline=fits_deadline
        )
        binning = dataset_params(found.max_bin)
        choice = (found.interactions, found.linear)
        in_dev = need(p.sample_rows) < plan.dev_stop
        no_deadline = float("inf")  # the derived columns of a fit are measured whole, as on one instance
        derived_dev = derive(
            w.x[in_dev], w.y[in_dev], features, choice, seed=config.seed, binning=binning, deadline=no_deadline
        )
        derived_all = derive(w.x, w.y, features, choice, seed=config.seed, binning=binning, deadline=no_deadline)
        backtest_rounds = found.rounds_for(plan.dev_stop, config.num_boost_round)
        published_rounds = found.rounds_for(p.rows, config.num_boost_round)
        backtest = self._fit(p, found, derived_dev, stop=plan.dev_stop, rounds=backtest_rounds, what="backtest")
        published = self._fit(p, found, derived_all, stop=p.rows, rounds=published_rounds, what="published")
        others, baseline, baseline_threshold = families_and_baseline(
            w,
            sample_plan,
            features,
            config,
            w.x[in_dev],
            w.y[in_dev],
            oof_y=oof_y,
            threshold=threshold,
            fits_deadline=fits_deadline,
        )
        began = time.perf_counter()
        scores = self._score_test(p, {"backtest": backtest, "baseline": baseline})
        score_ms = 1e6 * (time.perf_counter() - began) / max(p.y_test.size, 1)
        comparison = [
            lightgbm_row(
                w.y, sample_plan, found.oof, fit_seconds=found.fold_fit_seconds, score_ms_per_1k=score_ms, costs=costs
            ),
            *others,
        ]
        x_sample = p.x_test_sample
        explanations = explain(
            published, features, x_sample, p.y_test_sample, published.predict(x_sample), threshold, seed=config.seed
        )
        return Fitted(
            found,
            threshold,
            curve,
            backtest,
            backtest_rounds,
            scores["backtest"],
            published,
            published_rounds,
            evaluate(p.y_test, scores["baseline"], baseline_threshold, **costs),
            scores["baseline"],
            comparison,
            explanations,
        )

    def champion_scorer(self, prepared: Prepared, models: ModelStore) -> ChampionScorer:
        """What the gate calls for the champion's test-part probabilities: scored on the workers."""
        p = _distributed(prepared)

        def score(version: str) -> tuple[np.ndarray, float] | None:
            try:
                manifest = models.manifest(version)
                onnx_bytes = models.file(version, "model.onnx", manifest=manifest)  # checked against its digest
            except (ModelIntegrityError, ModelNotAvailableError, BlobNotFoundError) as exc:
                log.warning("champion %s cannot be scored (%s); the new model replaces it", version, exc.reason)
                return None
            if list(manifest.feature_names) != self.features or manifest.threshold is None:
                log.warning("champion %s was trained on other features; the new model replaces it", version)
                return None
            champion: Any = onnx_bytes
            if manifest.categories:  # the window's codes in the champion's own vocabularies, on the workers
                champion = (onnx_bytes, Encoding.from_manifest(self.features, manifest.categories))
            return self._score_test(p, {"champion": champion})["champion"], manifest.threshold

        return score

    # -- on the workers --------------------------------------------------------------------------------
    def _rows(self, p: DistributedPrepared, start: int, stop: int) -> tuple[dd.DataFrame, list[int]]:
        """The window's rows ``[start, stop)`` as partitions that hold some, with each one's length there."""
        full = with_rows(frame(need(p.snapshot), self.options, encoding=p.window.encoding), list(p.offsets))
        keep, lengths = [], []
        for i, (offset, length) in enumerate(zip(p.offsets, p.lengths, strict=True)):
            inside = min(stop, offset + length) - max(start, offset)
            if inside > 0:
                keep.append(i)
                lengths.append(inside)
        chosen = full.partitions[keep]
        return chosen[(chosen[ROW] >= start) & (chosen[ROW] < stop)], lengths

    def _fit(
        self, p: DistributedPrepared, found: SearchResult, derived: Derived | None, *, stop: int, rounds: int, what: str
    ) -> Model:
        from lightgbm.dask import DaskLGBMClassifier

        from training.model import Model
        from training.onnx_export import float32_thresholds

        rows, lengths = self._rows(p, 0, stop)
        names = self.features if derived is None else self.features + derived.names(self.features)
        meta = rows._meta[self.features].astype(np.float32).reindex(columns=names).astype(np.float32)
        x = rows.map_partitions(workers.inputs, self.features, derived, names, meta=meta).to_dask_array(lengths=lengths)
        y = rows[self.label].to_dask_array(lengths=lengths)
        params = {k: v for k, v in found.params.items() if k not in ("interactions", "linear", "num_threads")}
        params.update(max_bin=found.max_bin, feature_pre_filter=False, time_out=NETWORK_TIMEOUT_MINUTES)
        model = DaskLGBMClassifier(client=self.client, n_estimators=rounds, **params)
        began = time.monotonic()

        def work() -> None:
            from distributed import futures_of, wait

            # read the parts first: a part that fails to read (gone, changed) raises its own error here, where
            # inside LightGBM's fit it surfaces as an unrelated one
            parts = self.client.persist([x, y])
            wait(parts)
            for future in futures_of(parts):
                if future.status == "error":
                    future.result()
            categorical = p.window.encoding.categorical if p.window.encoding is not None else []
            model.fit(
                parts[0],
                parts[1],
                feature_name=names,
                categorical_feature=categorical or "auto",
                callbacks=list(self.callbacks),
            )

        self._watched(work, f"the {what} model's fit")
        log.info("distributed %s fit: %d rows, %d rounds in %.1f s", what, stop, rounds, time.monotonic() - began)
        booster: lgb.Booster = model.to_local().booster_
        return Model(float32_thresholds(booster), derived)

    def _score_test(self, p: DistributedPrepared, models: dict[str, Any]) -> dict[str, np.ndarray]:
        """Each of ``models`` (a ``Model``, a scikit-learn pipeline or ONNX bytes) on every test row, in row order."""
        import pandas as pd

        rows, _ = self._rows(p, p.plan.dev_stop, p.rows)
        meta = pd.DataFrame({ROW: pd.Series(dtype=np.int64), **{k: pd.Series(dtype=np.float64) for k in models}})
        scoring = rows.map_partitions(workers.score, self.features, models, p.window.encoding, meta=meta)
        scored = self._compute(scoring, "scoring the test part on the workers").sort_values(ROW)
        if not np.array_equal(scored[ROW].to_numpy(), need(p.test).rows):
            raise TrainingError("the test part scored on the workers is not the test part that was read")
        return {k: scored[k].to_numpy(np.float64) for k in models}

    def _compute(self, collection: Any, what: str, *, many: bool = False) -> Any:
        from dask.base import compute

        return self._watched(lambda: compute(*collection) if many else collection.compute(), what)

    def _check_workers(self, present: set[str], what: str, cause: BaseException | None) -> None:
        gone = present - set(self.client.nthreads())
        if gone:
            raise _lost(gone, what) from cause

    def _watched(self, work: Any, what: str) -> Any:
        """Run ``work`` while watching the workers: one leaving fails the run now, instead of LightGBM waiting
        on the network for a peer that is gone."""
        present = set(self.client.nthreads())
        pool = ThreadPoolExecutor(1, thread_name_prefix="distributed-fit")
        future = pool.submit(work)
        try:
            while True:
                try:
                    return future.result(timeout=WATCH_SECONDS)
                except FutureTimeout:
                    self._check_workers(present, what, None)
                except Exception as exc:  # a worker's death can also surface as the computation's own error
                    self._check_workers(present, what, exc)
                    raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)


def _distributed(prepared: Prepared) -> DistributedPrepared:
    """``prepared`` as the Dask engine's own ``prepare`` returned it."""
    if not isinstance(prepared, DistributedPrepared):
        raise TrainingError("the Dask engine fits only what its own prepare returned")
    return prepared


def _lost(gone: set[str], what: str) -> WorkerLostError:
    return WorkerLostError(
        f"Dask worker {', '.join(sorted(gone))} left the cluster during {what} (killed, out of memory or "
        "preempted); the run stops and nothing is published"
    )
