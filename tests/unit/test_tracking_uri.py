"""MLflow's store in Azure is reached with an Entra ID token, never a password, and the token is never shown."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from training.tracking import POSTGRES_SCOPE, artifact_root, resolve


class _Credential:
    def __init__(self) -> None:
        self.scopes: list[str] = []

    def get_token(self, scope: str):
        self.scopes.append(scope)

        class Token:
            token = "eyJ0eXAi.with/slash+plus=="  # characters a URI must escape

        return Token()


def test_the_token_placeholder_becomes_a_fresh_escaped_token():
    template = (
        "postgresql+psycopg2://id-fraudops:{entra_token}@psql-x.postgres.database.azure.com:5432/mlflow?sslmode=require"
    )
    credential = _Credential()
    opened = resolve(template, credential=credential)
    assert credential.scopes == [POSTGRES_SCOPE]
    parts = urlsplit(opened)
    assert (
        unquote(parts.password or "") == "eyJ0eXAi.with/slash+plus=="
        and parts.hostname == "psql-x.postgres.database.azure.com"
    )
    assert "{entra_token}" not in opened and parts.path == "/mlflow"


def test_a_uri_without_the_placeholder_is_used_as_given_and_asks_for_no_token():
    credential = _Credential()
    assert resolve("sqlite:///x/mlflow.db", credential=credential) == "sqlite:///x/mlflow.db"
    assert credential.scopes == []


def test_the_configured_artifact_root_wins(tmp_path):
    assert artifact_root("postgresql://h/db", "wasbs://mlflow@acct.blob.core.windows.net/") == (
        "wasbs://mlflow@acct.blob.core.windows.net"
    )
    assert artifact_root("postgresql://h/db") is None
    assert artifact_root(f"sqlite:///{tmp_path}/m.db") == (tmp_path / "artifacts").as_uri()
