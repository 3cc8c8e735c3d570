"""The composition root: every client and service of the process, built once from the settings.

The Azure triggers (``functions/``), ``fraudops serve`` and the rest of the CLI, and the tests call
:func:`bootstrap`; :func:`reset` forgets everything it built. Nothing is built at import, and
nothing on :func:`bootstrap` itself: each member is built on its first use (a CLI command that only
needs the blob store never loads a model), once, under a lock, from the config of its own concern
(``settings.storage``, ``settings.scoring``...). The modules below keep plain constructors that
take their dependencies; the caching lives here only.

Roots are kept per settings object: the local simulation and the tests serve their own settings
in the same process as the environment's.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from shared.domain.settings import get_settings

if TYPE_CHECKING:
    from shared.adapters.anchor import HeadAnchor
    from shared.adapters.bank_keys import KeyStore
    from shared.adapters.model_store import ModelStore
    from shared.adapters.storage import AzureBlobStore, Patience
    from shared.domain.config import ScoringConfig
    from shared.domain.pseudonym import Pseudonymiser
    from shared.domain.settings import Settings
    from shared.governance.admin_access import AdminAccess
    from shared.scoring.online import OnlineFeatures
    from shared.scoring.recorder import NullRecorder, PredictionRecorder
    from shared.scoring.scorer import Scorer
    from shared.streaming.processor import StreamProcessor


class Services:
    """What one process builds from one ``Settings``: each member on first use, then the same object."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[str, Any] = {}
        self._lock = threading.RLock()  # reentrant: the scorer's build asks for the blob store
        self._telemetry_checked = False
        # how the data's blob client waits for storage (None: the function apps' default); ``fraudops`` sets a
        # shorter one, with its retries shown, before its first storage call
        self.storage_patience: Patience | None = None

    def _once[T](self, name: str, build: Callable[[], T]) -> T:
        found = self._built.get(name)
        if found is not None:
            return cast("T", found)
        with self._lock:
            if name not in self._built:
                self._built[name] = build()
            return cast("T", self._built[name])

    @property
    def scoring(self) -> ScoringConfig:
        """The scoring config, cut from the settings once (the request path reads it on every request)."""
        return self._once("scoring", lambda: self.settings.scoring)

    @property
    def pseudonymise(self) -> Pseudonymiser:
        """Customer ids to pseudonyms with the configured key, at the edges (HTTP, stream)."""
        from shared.domain.pseudonym import pseudonymiser

        def build() -> Pseudonymiser:
            key = self.scoring.customer_pseudonym_key
            return pseudonymiser(key.get_secret_value() if key else None)

        return self._once("pseudonymise", build)

    @property
    def credential(self) -> Any:
        """The Entra ID credential of the storage identity; every Azure client shares it (one token cache)."""
        from shared.adapters.identity import build_credential

        return self._once("credential", lambda: build_credential(self.settings.storage.storage_credential_client_id))

    def _uses_identity(self) -> bool:
        config = self.settings.storage
        return bool(config.storage_blob_uri or config.storage_account_name)

    @property
    def blob_store(self) -> AzureBlobStore:
        """The data's blob store (it creates no containers: Bicep in Azure, ``fraudops init`` locally)."""
        from shared.adapters.storage import build_blob_store

        return self._once(
            "blob_store",
            lambda: build_blob_store(
                self.settings.storage,
                credential=self.credential if self._uses_identity() else None,
                patience=self.storage_patience,
            ),
        )

    @property
    def model_store(self) -> ModelStore:
        """The published model versions and the champion pointer of ``MODEL_NAME``."""
        from shared.adapters.model_store import ModelStore

        return self._once("model_store", lambda: ModelStore(self.blob_store, self.settings.scoring.model_name))

    @property
    def scorer(self) -> Scorer:
        """The champion's scorer: one ONNX session per model version, kept across invocations."""
        return self._once("scorer", self._build_scorer)

    def _build_scorer(self) -> Scorer:
        from shared.scoring.scorer import build_scorer

        return build_scorer(config=self.settings.scoring, store=self.blob_store)

    @property
    def recorder(self) -> PredictionRecorder | NullRecorder:
        """What was served, buffered and written to Blob (a no-op with ``PREDICTIONS_RECORD=false``)."""
        return self._once("recorder", self._build_recorder)

    def _build_recorder(self) -> PredictionRecorder | NullRecorder:
        from shared.scoring.recorder import NullRecorder, build_recorder

        config = self.settings.scoring
        if not config.predictions_record:
            return NullRecorder()  # no store is built when nothing is recorded
        return build_recorder(config=config, store=self.blob_store)  # closed at exit, writing what it holds

    @property
    def audit_anchor(self) -> HeadAnchor | None:
        """Where the audit chain's head is anchored outside the data account (None when not configured)."""
        if "audit_anchor" not in self._built:
            with self._lock:
                if "audit_anchor" not in self._built:
                    self._built["audit_anchor"] = self._build_anchor()
        return cast("HeadAnchor | None", self._built["audit_anchor"])

    def _build_anchor(self) -> HeadAnchor | None:
        from shared.adapters.anchor import HeadAnchor
        from shared.adapters.storage import AzureBlobStore, make_service_client
        from shared.domain.config import StorageConfig

        governance = self.settings.governance
        uri, connection = governance.audit_anchor_blob_uri, governance.audit_anchor_connection
        if not uri and connection is None:
            return None
        storage = self.settings.storage
        config = StorageConfig(
            app_env=storage.app_env,
            storage_connection=connection.get_secret_value() if connection is not None else "",
            storage_blob_uri=uri,
            storage_account_name=None,
            storage_credential_client_id=storage.storage_credential_client_id,
        )
        credential = self.credential if uri else None
        return HeadAnchor(AzureBlobStore(make_service_client(config, credential=credential)))

    @property
    def behaviour(self) -> OnlineFeatures | None:
        """The online features of the dataset (None when its contract declares no behaviour)."""
        if "behaviour" not in self._built:
            with self._lock:
                if "behaviour" not in self._built:
                    from shared.scoring.online import build_online_features

                    self._built["behaviour"] = build_online_features(self.settings.online_store)
        return cast("OnlineFeatures | None", self._built["behaviour"])

    @property
    def processor(self) -> StreamProcessor:
        """The stream processor: the same store and scorer as the HTTP routes of this process."""
        return self._once("processor", self._build_processor)

    def _build_processor(self) -> StreamProcessor:
        from shared.streaming.alerts import get_publisher
        from shared.streaming.service import build_processor

        config = self.settings.streaming
        return build_processor(
            config,
            store=self.blob_store,
            scorer=self.scorer,
            publisher=get_publisher(config, credential=lambda: self.credential),
            behaviour=self.behaviour,
        )

    @property
    def bank_keys(self) -> KeyStore:
        """The banks' signing keys: Key Vault when ``KEY_VAULT_URL`` is set, else ``FL_BANK_KEYS``."""
        return self._once("bank_keys", self._build_bank_keys)

    def _build_bank_keys(self) -> KeyStore:
        from shared.adapters.bank_keys import build_key_store

        config = self.settings.federated
        return build_key_store(config, credential=self.credential if config.key_vault_url else None)

    @property
    def admin_access(self) -> AdminAccess:
        """Who may call the admin routes: Entra ID tokens of the configured tenant (their signing keys fetched and
        cached once per process), and the local admin keys outside production."""
        return self._once("admin_access", self._build_admin_access)

    def _build_admin_access(self) -> AdminAccess:
        from shared.adapters.entra import EntraTokens
        from shared.governance.admin_access import AdminAccess

        config = self.settings.admin_access
        tokens = (
            EntraTokens(
                tenant_id=config.admin_entra_tenant_id or "",
                audiences=config.audiences,
                jwks_url=config.admin_entra_jwks_url,
            )
            if config.entra
            else None
        )
        return AdminAccess(config, tokens=tokens)

    def configure_telemetry(self) -> None:
        """Set up spans and metrics as the settings say (once per process: later calls change nothing)."""
        if self._telemetry_checked:  # the request path: one attribute read
            return
        from shared.adapters.telemetry import configure_telemetry, configured_mode

        if configured_mode() is None:
            configure_telemetry(self.settings.telemetry)
        self._telemetry_checked = True

    def close_recorder(self, timeout: float = 10.0) -> None:
        """Write what the recorder still holds, through the store it was built with, and forget it."""
        with self._lock:
            recorder = self._built.pop("recorder", None)
        if recorder is not None:
            recorder.close(timeout)


_roots: dict[Settings, Services] = {}
_last: tuple[Settings, Services] | None = None  # the hot path's lookup: one identity check, no hashing
_lock = threading.Lock()


def bootstrap(settings: Settings | None = None) -> Services:
    """The process's services for ``settings`` (default: the environment's, read once), built on first use."""
    global _last
    if settings is None:
        settings = get_settings()  # cached: a call, no read
    last = _last
    if last is not None and last[0] is settings:
        return last[1]
    with _lock:
        services = _roots.get(settings)
        if services is None:
            services = _roots[settings] = Services(settings)
            _read_stored_contracts(services)
        _last = (settings, services)
        return services


def _read_stored_contracts(services: Services) -> None:
    """The contracts a bank uploaded, read through this root's store on the first lookup (not now: no I/O here)."""
    from shared.adapters.contracts import stored
    from shared.domain.contracts import use_stored

    use_stored(lambda: stored(services.blob_store))


def reset(timeout: float = 10.0) -> None:
    """Forget every root and cached client and the settings; the next :func:`bootstrap` builds anew.

    Recorders are closed first: each writes what it holds through the store it was built with.
    """
    global _last
    with _lock:
        roots = list(_roots.values())
        _roots.clear()
        _last = None
    for services in roots:
        services.close_recorder(timeout)
    get_settings.cache_clear()
    from shared.domain.contracts import use_stored

    use_stored(None)


def close_recorders(timeout: float = 10.0) -> None:
    """Write what every recorder holds and forget them (a server's shutdown); the rest stays built."""
    with _lock:
        roots = list(_roots.values())
    for services in roots:
        services.close_recorder(timeout)
