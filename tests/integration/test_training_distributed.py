"""Distributed retraining on a real Dask cluster (``distributed.LocalCluster``: two worker processes with a memory
limit each, on loopback), reading the curated parts from Azurite through adlfs, with LightGBM's own Dask mode.

Against the single-node path on the same data: the same folds and search, metrics within a stated
tolerance. Faults: a worker killed mid-fit, a dataset version that moves during the run, a part deleted
under it, a window too big for one instance with no cluster. And the timer's shape: it submits the run
and returns, the cluster publishes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time

import numpy as np
import pytest

import training.pipeline as pipeline
from shared.adapters.model_store import ModelStore
from shared.domain.errors import TrainingError
from shared.etl.manifest import files_of_version
from shared.etl.service import run_etl
from training.engines.dask import DaskEngine
from training.retrain import Submitted, retrain

pytestmark = pytest.mark.slow

# LightGBM's data-parallel mode bins each feature on the workers' own rows and sums histograms over the
# network: the trees differ slightly from one process's, so the figures agree within these bounds
AUC_TOLERANCE = 0.01
PR_AUC_TOLERANCE = 0.04
WORKER_MEMORY = "2GiB"


@pytest.fixture(scope="module")
def cluster():
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=WORKER_MEMORY,
        host="127.0.0.1",
        dashboard_address=None,
    ) as c:
        yield c


@pytest.fixture
def three_parts(store, settings, generated_csv):
    """The generated rows landed as three bank files, oldest first: three curated parts, three versions."""
    lines = generated_csv.read_text().splitlines()
    head, body = lines[0], lines[1:]
    size = len(body) // 3
    outcomes = []
    for i in range(3):
        text = "\n".join([head, *body[i * size : (i + 1) * size]]) + "\n"
        store.put_bytes("raw", f"bank-{i}.csv", text.encode())
        outcomes.append(run_etl(store, settings.etl, name=f"bank-{i}.csv"))
    return outcomes


def _on(settings, cluster, **update):
    return settings.model_copy(update={"dask_scheduler_address": cluster.scheduler_address, **update})


def _train(store, settings, **kw):
    return pipeline.run_training(store, config=settings.training, storage=settings.storage, **kw)


def _failure_reports(store):
    return [json.loads(store.get_bytes("reports", n)[0]) for n in store.list_names("reports", "training/failed-")]


def test_distributed_and_single_node_agree_on_the_same_data(store, settings, three_parts, cluster):
    config = pipeline.TrainConfig.from_settings(settings)
    single = pipeline.run_training(store, config=settings.training, storage=settings.storage, run_config=config)
    distributed = _train(store, _on(settings, cluster), run_config=config)

    assert distributed.dataset_version == single.dataset_version == three_parts[-1].dataset_version
    # the same folds and test part, row for row (the window is smaller than the search sample: all of it)
    info = distributed.split.pop("distributed")
    assert info == {"workers": 2, "search_sample_rows": single.split["window_rows"]}
    assert distributed.split == single.split
    assert distributed.split["window_rows"] == sum(o.rows_valid for o in three_parts)
    # the same search on the same folds: the same trials, the same choice, so the same cost threshold
    strip = ("cut_short",)
    if not any(h["cut_short"] for h in single.search["history"] + distributed.search["history"]):
        assert [{k: v for k, v in h.items() if k not in strip} for h in distributed.search["history"]] == [
            {k: v for k, v in h.items() if k not in strip} for h in single.search["history"]
        ]
        assert distributed.hyperparameters == single.hyperparameters
        assert distributed.threshold == single.threshold
    # the boosters differ only as data-parallel LightGBM differs from one process
    assert abs(distributed.auc - single.auc) <= AUC_TOLERANCE
    assert abs(distributed.pr_auc - single.pr_auc) <= PR_AUC_TOLERANCE
    assert distributed.parity_max_abs_diff < 1e-4  # the ONNX export of the booster that came back
    # the champion (the single-node model) was scored on the workers, on the same test rows
    assert distributed.champion_before == single.model_version
    assert "trained on the test rows" in distributed.promotion_reason
    models = ModelStore(store, settings.model_name)
    manifest = models.manifest(distributed.model_version)
    assert manifest.figures["published_rows"] == single.split["window_rows"]
    assert manifest.training_profile["rows"] == single.split["window_rows"]
    assert len(manifest.trained_on) == 3


def test_behavioural_features_on_the_cluster_are_the_single_node_ones(store, settings, cluster, tmp_path, monkeypatch):
    """A contract with behaviour over three files: the Dask path's rows carry the very behavioural features the
    single-node window computes (point in time, the older files' history included), row for row."""
    from distributed import Client

    from shared.adapters.contracts import upload
    from shared.bootstrap import bootstrap
    from shared.domain.contracts import forget_contracts, get_contract
    from shared.domain.settings import get_settings
    from tests.conftest import clear_caches
    from tests.integration.test_behaviour_end_to_end import _contract
    from training.engines.local import LocalEngine
    from training.generators.card_transactions import generate

    _contract(tmp_path)  # uploaded, as a bank adds a dataset (the run hands the contract itself to the workers)
    upload(store, (tmp_path / "card_behaviour.yaml").read_text(), "card_behaviour.yaml")
    forget_contracts()
    monkeypatch.setenv("DATASET_NAME", "card_behaviour")
    get_settings.cache_clear()
    clear_caches()
    bootstrap()  # the composition root reads the stored contracts
    settings = get_settings()
    contract = get_contract("card_behaviour")
    generate(9_000, 5, tmp_path / "cards.csv", fraud_rate=0.03)
    lines = (tmp_path / "cards.csv").read_text().splitlines()
    size = (len(lines) - 1) // 3
    for i in range(3):
        store.put_bytes(
            "raw", f"cards-{i}.csv", "\n".join([lines[0], *lines[1 + i * size : 1 + (i + 1) * size]]).encode()
        )
        run_etl(store, settings.etl, name=f"cards-{i}.csv")
    config = dataclasses.replace(pipeline.TrainConfig.from_settings(settings), window_rows=2 * size)  # 2 of 3 files
    local = LocalEngine(store=store, config=settings.training, contract=contract).prepare(None, config)
    names = contract.model_features
    assert local.window.features == names and not np.isnan(local.window.x[:, -5:]).all()
    with Client(cluster) as client:
        engine = DaskEngine(
            client=client, store=store, config=settings.training, storage=settings.storage, contract=contract
        )
        prepared = engine.prepare(None, config)
    assert prepared.window_rows == local.window.rows and prepared.split["files_left_out"] == 1
    np.testing.assert_array_equal(prepared.window.x, local.window.x[prepared.sample_rows])
    np.testing.assert_array_equal(prepared.x_eval, local.window.x[prepared.eval_rows])
    forget_contracts()
    get_settings.cache_clear()


def test_a_version_landing_during_the_run_is_not_read(
    store, settings, three_parts, cluster, generated_csv, monkeypatch
):
    pinned = three_parts[-1].dataset_version
    original = DaskEngine.fit

    def land_then_fit(self, prepared, config, *, deadline):
        store.put_bytes("raw", "late.csv", generated_csv.read_bytes())
        late = run_etl(store, settings.etl, name="late.csv")  # a new version with a fourth, large part
        assert late.dataset_version != pinned
        return original(self, prepared, config, deadline=deadline)

    monkeypatch.setattr(DaskEngine, "fit", land_then_fit)
    run = _train(store, _on(settings, cluster))
    assert run.dataset_version == pinned
    assert run.split["window_rows"] == sum(o.rows_valid for o in three_parts)  # not a row of the late part
    manifest = ModelStore(store, settings.model_name).manifest(run.model_version)
    assert sorted(manifest.trained_on) == sorted(files_of_version(store, settings.dataset_name, pinned)[1])


def test_a_part_deleted_during_the_run_fails_it_with_nothing_published(
    store, settings, three_parts, cluster, monkeypatch
):
    original = DaskEngine.fit

    def erase_then_fit(self, prepared, config, *, deadline):
        store.delete("curated", prepared.files[0])  # what an erasure does once the manifest points elsewhere
        return original(self, prepared, config, deadline=deadline)

    monkeypatch.setattr(DaskEngine, "fit", erase_then_fit)
    with pytest.raises(TrainingError, match="is gone") as caught:
        _train(store, _on(settings, cluster))
    assert "nothing is published" in caught.value.reason
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] is None
    assert not [n for n in store.list_names("models") if n.endswith("model.onnx")]
    (report,) = _failure_reports(store)
    assert report["champion_untouched"] and "is gone" in report["reason"]


def test_a_window_too_big_for_one_instance_without_a_cluster_is_refused(store, settings, three_parts):
    small = settings.model_copy(update={"train_distributed_rows": 1000})
    with pytest.raises(TrainingError, match="DASK_SCHEDULER_ADDRESS"):
        _train(store, small)
    (report,) = _failure_reports(store)
    assert "TRAIN_DISTRIBUTED_ROWS" in report["reason"]
    assert ModelStore(store, settings.model_name).champion()[0] is None


def test_the_timer_hands_the_run_to_the_cluster_and_returns(store, settings, three_parts, cluster):
    pinned = three_parts[-1].dataset_version
    began = time.monotonic()
    outcome = retrain(store, _on(settings, cluster))
    handed_over = time.monotonic() - began
    assert isinstance(outcome, Submitted) and outcome.dataset_version == pinned and pinned in outcome.key
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] is None  # it returned before the run published anything
    deadline = time.monotonic() + 240
    while models.champion()[0] is None and time.monotonic() < deadline:
        assert not _failure_reports(store), _failure_reports(store)
        time.sleep(1)
    champion = models.champion()[0]
    assert champion is not None, "the run submitted to the cluster did not publish within 4 minutes"
    assert models.manifest(champion).dataset_version == pinned
    assert handed_over < (time.monotonic() - began) / 3  # handing over is a small part of the run's time


def test_categories_and_missing_values_train_on_the_cluster_as_on_one_instance(
    store, settings, cluster, tmp_path, monkeypatch
):
    """card_transactions (categories, a nullable country, a boolean) on the workers: the same vocabularies as
    the single-node window, a categorical model, and a champion with other codes scored on the workers as the
    single-node gate scores it. The module's cluster: its workers are given the contract, never read a setting."""
    from distributed import Client

    from cli.devtools.models import publish_contract_model
    from shared.domain.contracts import get_contract
    from shared.domain.settings import get_settings
    from training.engines.local import LocalEngine
    from training.gate import champion_scores
    from training.generators import generate_dataset

    monkeypatch.setenv("DATASET_NAME", "card_transactions")
    get_settings.cache_clear()
    settings = get_settings()
    contract = get_contract("card_transactions")
    generate_dataset("card_transactions", 30_000, 11, tmp_path / "cards.csv", fraud_rate=0.03)
    lines = (tmp_path / "cards.csv").read_text().splitlines()
    size = (len(lines) - 1) // 3
    for i in range(3):
        rows = lines[1 + i * size : 1 + (i + 1) * size]
        store.put_bytes("raw", f"cards-{i}.csv", "\n".join([lines[0], *rows]).encode())
        run_etl(store, settings.etl, name=f"cards-{i}.csv")
    # the champion learnt its categories from the first file alone: its codes are not the whole window's
    (tmp_path / "first.csv").write_text("\n".join(lines[: 1 + size]) + "\n")
    champion = "20261101T000000Z-aaaaaaaa"
    publish_contract_model(store, settings.model_name, contract, tmp_path / "first.csv", version=champion, trees=30)
    models = ModelStore(store, settings.model_name)
    assert models.champion()[0] == champion and models.manifest(champion).categories
    config = pipeline.TrainConfig.from_settings(settings)

    local = LocalEngine(store=store, config=settings.training, contract=contract).prepare(None, config)
    assert local.drift.checked, local.drift.message  # the newest file's categories in the champion's codes
    with Client(cluster) as client:
        engine = DaskEngine(
            client=client, store=store, config=settings.training, storage=settings.storage, contract=contract
        )
        prepared = engine.prepare(None, config)
        assert prepared.window.encoding.to_manifest() == local.window.encoding.to_manifest()  # code for code
        assert prepared.window.encoding.categorical == [1, 2, 3]
        np.testing.assert_array_equal(prepared.y_test, local.y_test)
        on_workers = engine.champion_scorer(prepared, models)(champion)
        here = champion_scores(models, champion, contract, local.x_test, local.window.encoding)
        assert on_workers is not None and here is not None
        np.testing.assert_allclose(on_workers[0], here[0], atol=1e-6)  # recoded on the workers as here

        distributed = _train(store, _on(settings, cluster), run_config=config)
    assert distributed.split["distributed"]["workers"] == 2 and distributed.parity_max_abs_diff < 1e-4
    manifest = models.manifest(distributed.model_version)
    assert manifest.categories == local.window.encoding.to_manifest()
    assert distributed.champion_before == champion
    assert "cannot be scored" not in distributed.promotion_reason
    get_settings.cache_clear()


def test_a_worker_killed_mid_fit_fails_the_run_cleanly(store, settings, three_parts, cluster, monkeypatch):
    """Last of the module: the cluster loses a worker here (its nanny starts another)."""
    from distributed import Client

    with Client(cluster) as client:
        pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    original = DaskEngine._fit

    def fit_and_kill(self, *args, **kwargs):
        threading.Timer(2.0, os.kill, (victim, signal.SIGKILL)).start()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(DaskEngine, "_fit", fit_and_kill)
    monkeypatch.setattr(DaskEngine, "callbacks", (lambda _env: time.sleep(0.05),))  # a fit of many seconds
    with pytest.raises(TrainingError, match="left the cluster") as caught:
        _train(store, _on(settings, cluster))
    assert "nothing is published" in caught.value.reason
    assert ModelStore(store, settings.model_name).champion()[0] is None
    assert not [n for n in store.list_names("models") if n.endswith("model.onnx")]
    (report,) = _failure_reports(store)
    assert "left the cluster" in report["reason"] and report["champion_untouched"]
    cluster.wait_for_workers(2, timeout=60)  # the nanny brings the worker back; the cluster is usable again
