"""Scoring with ONNX Runtime: the champion loaded once per process, refreshed cheaply.

A ``LoadedModel`` is immutable (session, manifest, threshold); the ``Scorer`` swaps the
reference atomically when the champion pointer's ETag changes, at most every
``MODEL_REFRESH_SECONDS``, so requests in flight keep the model they started with. A model
whose bytes or feature order do not match its manifest is refused and the old one keeps serving.

Pinned versions (shadow tests) live in a small cache of their own, loaded outside any lock the
champion refresh takes, and at most ``PINNED_LOADS_PER_MINUTE`` cold loads a minute: callers that
rotate through more distinct versions than the cache holds get 503 "retry" instead of making every
request reload a model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shared.adapters.model_store import ModelStore, check_version
from shared.domain.documents.model import ModelManifest
from shared.domain.encoding import Encoding
from shared.domain.errors import ModelDeprecatedError, ModelIntegrityError, ModelNotAvailableError, RetryLaterError
from shared.scoring.explain import Explainers

if TYPE_CHECKING:
    import onnxruntime as ort

    from shared.adapters.storage import BlobStore
    from shared.domain.config import ScoringConfig

log = logging.getLogger(__name__)

PINNED_CACHE = 4
PINNED_LOADS_PER_MINUTE = 8


@dataclass(frozen=True)
class LoadedModel:
    """One model version ready to score."""

    version: str
    manifest: ModelManifest  # parsed once, when the version is loaded
    session: ort.InferenceSession
    input_name: str
    feature_names: tuple[str, ...]
    threshold: float
    manifest_sha256: str | None = None  # the pointer's pin, for the champion
    encoding: Encoding | None = None  # the categorical features' codes the model was trained with (None: none)

    def encode(self, x: np.ndarray, texts: Mapping[str, Sequence[object] | np.ndarray] | None) -> np.ndarray:
        """``x`` with its categorical columns coded from ``texts`` (the decoded values), as the model learnt them."""
        if self.encoding is None or not self.encoding.vocabularies:
            return x
        if texts is None:
            raise ValueError(f"model {self.version} takes categorical features; the request's values are needed")
        return self.encoding.fill(x, texts)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Fraud probability per row of a float32 matrix in ``feature_names`` order."""
        out = self.session.run(None, {self.input_name: x})
        probs = out[1] if len(out) > 1 else out[0]
        return np.asarray(probs, dtype=np.float64)[:, -1] if probs.ndim == 2 else np.asarray(probs, np.float64)


def load_model(
    models: ModelStore,
    version: str,
    *,
    expected_features: list[str],
    threads: int,
    manifest_sha256: str | None = None,
    expected_input: str | None = None,
) -> LoadedModel:
    """Fetch, verify and open one version; ``ModelIntegrityError`` when it does not match its manifest
    (or, with ``manifest_sha256``, when the manifest is not the one the champion pointer pinned)."""
    import onnxruntime as ort

    manifest = models.manifest(version, expected_sha256=manifest_sha256)
    onnx_bytes = models.file(version, "model.onnx", manifest=manifest)  # checked against the manifest's sha256
    features = list(manifest.feature_names)
    if features != expected_features:
        raise ModelIntegrityError(
            f"model {version}: feature order {features[:3]}... does not match the contract {expected_features[:3]}..."
        )
    trained_on = manifest.contract_input_sha256
    if expected_input and trained_on and trained_on != expected_input:
        raise ModelIntegrityError(
            f"model {version} was trained on another version of dataset {manifest.dataset}'s contract (its "
            f"features' types or rules differ: {trained_on[:12]} then, {expected_input[:12]} now); retrain it on "
            "the current contract, or restore the contract it was trained on"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # the converter declares label shape [1]; ORT warns on every batch
    try:
        session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for corrupt graphs
        raise ModelIntegrityError(f"model {version}: ONNX Runtime cannot load it ({exc})") from None
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].shape[-1] not in (len(features), None, "None"):
        raise ModelIntegrityError(f"model {version}: ONNX input does not take {len(features)} features")
    threshold = manifest.decision_threshold()
    encoding = Encoding.from_manifest(features, manifest.categories) if manifest.categories else None
    return LoadedModel(
        version, manifest, session, inputs[0].name, tuple(features), threshold, manifest_sha256, encoding
    )


class Scorer:
    """The champion (and a few pinned versions) of one model name, for one process."""

    def __init__(
        self,
        models: ModelStore,
        *,
        feature_names: list[str],
        refresh_seconds: float,
        threads: int = 1,
        clock: Callable[[], float] = time.monotonic,
        input_sha256: str | None = None,
    ) -> None:
        self.models = models
        self.feature_names = feature_names
        self.input_sha256 = input_sha256  # the contract's: a model trained on another shape is refused
        self.refresh_seconds = refresh_seconds
        self.threads = threads
        self._current: LoadedModel | None = None
        self._pointer_etag: str | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()  # the champion's refresh
        self._pinned_lock = threading.Lock()  # the pinned cache only; never held while a model loads
        self._pinned: OrderedDict[str, LoadedModel] = OrderedDict()
        self._pinned_loads: deque[float] = deque()
        self._clock = clock
        self._deprecated: tuple[float, frozenset[str]] | None = None  # (listed at, versions)
        self.explainers = Explainers(models)

    def fresh(self) -> LoadedModel | None:
        """The champion when no pointer check is due (never does I/O); ``None`` when ``current()`` must run."""
        model = self._current
        if model is not None and time.monotonic() - self._checked_at < self.refresh_seconds:
            return model
        return None

    def current(self) -> LoadedModel:
        """The champion, checking the pointer at most every ``refresh_seconds`` (every call until one exists)."""
        model = self.fresh()
        if model is not None:
            return model
        with self._lock:
            if self._current is None or time.monotonic() - self._checked_at >= self.refresh_seconds:
                self._refresh()  # with no model yet, a cheap HEAD per call finds the first one at once
        if self._current is None:
            raise ModelNotAvailableError("no model has been published yet; run training first")
        return self._current

    def _refresh(self) -> None:
        self._checked_at = time.monotonic()
        etag = self.models.pointer_etag()
        if etag is None or etag == self._pointer_etag:
            return
        pointer = self.models.pointer()
        if pointer is None:
            return
        version, etag = pointer.version, pointer.etag
        if (
            self._current is not None
            and version == self._current.version
            and pointer.manifest_sha256 == (self._current.manifest_sha256)
        ):
            self._pointer_etag = etag
            return
        try:
            if pointer.manifest_sha256 is None:
                raise ModelIntegrityError(
                    f"the champion pointer to {version} pins no manifest digest; promote it again"
                )
            model = load_model(
                self.models,
                version,
                expected_features=self.feature_names,
                threads=self.threads,
                manifest_sha256=pointer.manifest_sha256,
                expected_input=self.input_sha256,
            )
        except (ModelIntegrityError, ModelNotAvailableError) as exc:
            log.error(
                "refused champion %s, keeping %s: %s",
                version,
                self._current.version if self._current else "none",
                exc.reason,
            )
            self._pointer_etag = etag
            return
        previous = self._current.version if self._current else None
        self._current, self._pointer_etag = model, etag
        log.info("now serving model %s (was %s)", version, previous)

    def pinned(self, version: str) -> LoadedModel:
        """A specific version, for shadow tests; ``ModelNotAvailableError`` when unknown, ``RetryLaterError``
        when more distinct versions than ``PINNED_LOADS_PER_MINUTE`` were loaded cold in the last minute."""
        check_version(version)
        current = self._current
        if current is not None and current.version == version:
            return current
        self._refuse_deprecated(version)
        with self._pinned_lock:
            model = self._pinned.get(version)
            if model is not None:
                self._pinned.move_to_end(version)
                return model
            now = self._clock()
            while self._pinned_loads and now - self._pinned_loads[0] >= 60.0:
                self._pinned_loads.popleft()
            if len(self._pinned_loads) >= PINNED_LOADS_PER_MINUTE:
                raise RetryLaterError(
                    f"more than {PINNED_LOADS_PER_MINUTE} different pinned model versions were loaded in the last "
                    f"minute (this instance keeps {PINNED_CACHE}); retry shortly, or pin fewer versions at once"
                )
        # an unknown version costs one small read and no budget; a load that builds a session counts
        model = load_model(
            self.models,
            version,
            expected_features=self.feature_names,
            threads=self.threads,
            expected_input=self.input_sha256,
        )
        with self._pinned_lock:
            self._pinned_loads.append(self._clock())
            self._pinned[version] = model
            self._pinned.move_to_end(version)
            while len(self._pinned) > PINNED_CACHE:
                self._pinned.popitem(last=False)
        return model

    def _refuse_deprecated(self, version: str) -> None:
        """``ModelDeprecatedError`` for a deprecated version; the list is read at most every ``refresh_seconds``."""
        listed = self._deprecated
        now = self._clock()
        if listed is None or now - listed[0] >= self.refresh_seconds:
            listed = (now, frozenset(self.models.deprecated()))
            self._deprecated = listed
        if version in listed[1]:
            found = self.models.deprecation(version)
            actor, reason = (found.actor, found.reason) if found else ("an operator", "deprecated")
            raise ModelDeprecatedError(
                f"model version {version} was deprecated by {actor} ({reason}); it cannot be pinned"
            )

    def model(self, version: str | None = None) -> LoadedModel:
        return self.current() if version is None else self.pinned(version)


def build_scorer(*, config: ScoringConfig, store: BlobStore) -> Scorer:
    """A scorer of ``config``'s model name over ``store``, for the contract of ``config``'s dataset."""
    from shared.domain.contracts import get_contract

    contract = get_contract(config.dataset_name)
    return Scorer(
        ModelStore(store, config.model_name),
        feature_names=contract.model_features,
        input_sha256=contract.input_sha256,
        refresh_seconds=config.model_refresh_seconds,
        threads=config.ort_intra_op_threads,
    )
