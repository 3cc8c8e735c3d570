"""What follows a round's close: its model judged by the gate, published, promoted if it won, tracked.

The rounds' state machine (``shared.federated.rounds``) hands each closed model round to the
``OnClose`` this module builds. The gate and the experiment tracker live in ``training/``, which no
module of ``shared/`` imports: the composition root passes them in, as a ``Judge`` (ONNX bytes in,
``Verdict`` out) and a ``RoundTracker`` (the stored manifest and whether it was promoted).
"""

from __future__ import annotations

import logging
from typing import Protocol

import numpy as np

from shared.adapters.storage import BlobStore
from shared.domain.config import FederatedConfig
from shared.domain.documents.federated import RoundState
from shared.domain.documents.model import ModelManifest
from shared.federated.export import Judge, PublishedRound, publish_round
from shared.federated.rounds import OnClose

log = logging.getLogger(__name__)


class RoundTracker(Protocol):
    """Records a published round's model in the experiment tracker (MLflow in the app)."""

    def __call__(self, manifest: ModelManifest, *, promoted: bool) -> None: ...


def publish_closed_round(
    store: BlobStore,
    n: int,
    params: dict[str, np.ndarray],
    scaler: dict[str, np.ndarray],
    state: RoundState,
    *,
    config: FederatedConfig,
    judge: Judge | None = None,
    track: RoundTracker | None = None,
) -> PublishedRound:
    """Publish round ``n``'s model through the gate, then track it; the tracker is the record, not the model's
    home, so its failure is logged and the model stays published."""
    published = publish_round(
        store,
        model_name=config.model_name,
        dataset=config.dataset_name,
        experiment=config.fl_experiment,
        round_number=n,
        params=params,
        scaler=scaler,
        state=state,
        judge=judge,
    )
    if track is not None:
        try:
            track(published.manifest, promoted=published.promoted)
        except Exception:
            log.exception("MLflow logging of %s failed; the model is published", published.version)
    return published


def publisher(
    store: BlobStore, *, config: FederatedConfig, judge: Judge | None = None, track: RoundTracker | None = None
) -> OnClose:
    """The ``on_close`` of the rounds: each closed model round published as ``publish_closed_round`` does."""

    def on_close(n: int, params: dict[str, np.ndarray], scaler: dict[str, np.ndarray], state: RoundState) -> None:
        publish_closed_round(store, n, params, scaler, state, config=config, judge=judge, track=track)

    return on_close
