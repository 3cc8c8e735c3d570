"""MLflow's tracking store on a real PostgreSQL server, as in Azure (``infra/modules/mlflow.bicep``): the
password in ``MLFLOW_TRACKING_URI`` is ``{entra_token}``, replaced on every run by the app identity's
token (the token service is the one piece faked here), with the artifacts in the ``mlflow`` Blob
container (Azurite). Skipped where PostgreSQL's server is not installed; ``make setup`` installs it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import pytest

import training.pipeline as pipeline
from cli.devtools.postgres import Postgres, PostgresNotAvailable, private_postgres
from shared.domain.settings import get_settings
from shared.etl.service import run_etl
from training.tracking import POSTGRES_SCOPE


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    try:
        with private_postgres() as server:
            yield server
    except PostgresNotAvailable as exc:
        pytest.skip(str(exc))


class _Token:
    """The Entra ID token service's answer: for Azure Database for PostgreSQL, the token is the password."""

    def __init__(self, token: str) -> None:
        self.token, self.scopes = token, []

    def get_token(self, *scopes: str) -> Any:
        from azure.core.credentials import AccessToken

        self.scopes.extend(scopes)
        return AccessToken(self.token, 2**31 - 1)


def _azure_shaped(settings, monkeypatch, azurite: str, postgres: Postgres, token: str) -> tuple[Any, _Token]:
    import shared.adapters.identity as identity

    credential = _Token(token)
    monkeypatch.setattr(identity, "build_credential", lambda _client_id=None: credential)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", postgres.uri("{entra_token}"))
    monkeypatch.setenv("MLFLOW_ARTIFACT_ROOT", "wasbs://mlflow@devstoreaccount1.blob.core.windows.net/")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite)  # MLflow's Blob artifact store, on Azurite
    get_settings.cache_clear()
    return get_settings(), credential


def _train(store, settings, generated_csv):
    store.put_bytes("raw", "gen.csv", generated_csv.read_bytes())
    run_etl(store, settings.etl, name="gen.csv")
    return pipeline.run_training(
        store,
        config=settings.training,
        storage=settings.storage,
        # one start of the search: what is recorded in PostgreSQL is tested here, not the search
        run_config=dataclasses.replace(pipeline.TrainConfig.from_settings(settings), search_trials=1),
    )


def test_a_run_is_recorded_in_postgres_with_a_fresh_token_and_its_artifacts_in_blob(
    store, settings, azurite, postgres, generated_csv, monkeypatch
):
    from mlflow import MlflowClient

    azure, credential = _azure_shaped(settings, monkeypatch, azurite, postgres, postgres.password)
    s = _train(store, azure, generated_csv)
    assert s.promoted and "error" not in s.mlflow, s.mlflow
    assert credential.scopes == [POSTGRES_SCOPE]  # asked for a database token, once for the run
    assert s.mlflow["tracking_uri"] == postgres.uri("{entra_token}")  # the record keeps the URI as configured
    client = MlflowClient(tracking_uri=postgres.uri(), registry_uri=postgres.uri())
    run = client.get_run(s.mlflow["run_id"])
    assert run.data.params["model_version"] == s.model_version and run.data.tags["promoted"] == "True"
    assert run.data.metrics["test_auc"] == pytest.approx(s.auc, abs=1e-9)
    champion = client.get_model_version_by_alias(s.mlflow["registered_model"], "champion")
    assert (
        str(champion.version) == s.mlflow["registered_version"]
        and champion.tags["blob_model_version"] == s.model_version
    )
    # the artifacts went to the Blob container, not to a folder of the Function instance
    assert run.info.artifact_uri.startswith("wasbs://mlflow@devstoreaccount1.blob.core.windows.net/")
    names = store.list_names("mlflow")
    assert any(n.endswith("training_report.html") for n in names), names
    assert any(n.endswith("model.onnx") for n in names), names
    # the token is a password: it is in no record the run leaves behind
    reports = [store.get_bytes("reports", n)[0] for n in store.list_names("reports", "training/")]
    assert postgres.password not in json.dumps(dataclasses.asdict(s), default=str)
    assert all(postgres.password.encode() not in body for body in reports)


def test_a_refused_token_leaves_the_model_published_and_says_why_without_the_token(
    store, settings, azurite, postgres, generated_csv, monkeypatch
):
    import mlflow.store.db.utils as db_utils

    monkeypatch.setattr(db_utils, "MAX_RETRY_COUNT", 2)  # MLflow retries a refused connection for minutes
    wrong = "not-the-password-" + "x" * 20
    azure, _ = _azure_shaped(settings, monkeypatch, azurite, postgres, wrong)
    s = _train(store, azure, generated_csv)
    assert s.promoted  # the Blob model store is the source of truth; MLflow is the record
    error = s.mlflow["error"]
    assert "password authentication failed" in error, error
    assert wrong not in error and wrong not in json.dumps(dataclasses.asdict(s), default=str)
