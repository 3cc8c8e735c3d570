"""Each closed round's global model as ONNX (skl2onnx), published to the model store as a ``federated`` model.

The scaler and the logistic regression become one scikit-learn pipeline with the fitted
attributes set from the federated parameters, converted with a float32 ``features`` input in
the contract's order, so the scorer serves it like any other version (pinned by version).
Before it is published, a ``judge`` (``training.gate.judge`` in the app) chooses its decision
threshold by business cost and compares it with the champion on the curated test part; it is
promoted only if it wins, exactly as a retrained LightGBM model is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shared.adapters import documents
from shared.adapters.model_store import ModelStore
from shared.adapters.storage import BlobStore
from shared.domain import layout
from shared.domain.contracts import get_contract
from shared.domain.documents.federated import FederatedReport, RoundState
from shared.domain.documents.model import ModelDescription, ModelManifest
from shared.domain.errors import ConcurrentUpdateError
from shared.domain.verdicts import Judged, Skipped, Verdict
from shared.federated import model as lr

log = logging.getLogger(__name__)

Judge = Callable[[bytes], Verdict]
UNGATED_THRESHOLD = 0.5  # when there is no curated data to choose a threshold on


def to_onnx(params: dict[str, np.ndarray], scaler: dict[str, np.ndarray], feature_names: list[str]) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    n = len(feature_names)
    std = StandardScaler()
    std.mean_, std.scale_ = scaler["mean"].astype(np.float64), scaler["scale"].astype(np.float64)
    std.var_, std.n_features_in_, std.n_samples_seen_ = std.scale_**2, n, 1
    reg = LogisticRegression()
    reg.coef_ = params["coef"].astype(np.float64).reshape(1, n)
    reg.intercept_ = params["intercept"].astype(np.float64).reshape(1)
    reg.classes_, reg.n_features_in_ = np.array([0, 1]), n
    onnx_model = convert_sklearn(
        make_pipeline(std, reg),
        initial_types=[("features", FloatTensorType([None, n]))],
        options={id(reg): {"zipmap": False}},
        target_opset=15,
    )
    entry = onnx_model.metadata_props.add()
    entry.key, entry.value = "feature_names", ",".join(feature_names)
    return bytes(onnx_model.SerializeToString())


@dataclass(frozen=True)
class PublishedRound:
    """A round's model as published: its version, the stored manifest, and whether the gate promoted it."""

    version: str
    manifest: ModelManifest  # as the model store wrote it
    verdict: Verdict
    promoted: bool
    promotion_reason: str


def describe(
    state: RoundState, *, experiment: str, round_number: int, features: list[str], verdict: Verdict, parity: float
) -> ModelDescription:
    """What the manifest says about a round's model: how to serve it, how the gate judged it, who took part
    and with what privacy."""
    judged = verdict if isinstance(verdict, Judged) else None
    return ModelDescription(
        kind=layout.FEDERATED_KIND,
        feature_names=features,
        input_name="features",
        threshold=judged.threshold if judged else UNGATED_THRESHOLD,
        metrics=judged.metrics if judged else {},
        bank_metrics=state.aggregate_metrics,
        bank_reports={
            bank: {"examples": p.examples, "metrics": p.metrics} for bank, p in sorted(state.participants.items())
        },
        gate=verdict.record(),
        dataset_version=judged.dataset_version if judged else None,
        experiment=experiment,
        round=round_number,
        aggregator=state.aggregator,
        fl_mode=state.mode,
        participants=sorted(state.participants) or state.summed,
        clip_bound=state.clip_bound,
        clipped=state.clipped,
        noise_multiplier=state.noise_multiplier,
        noise_std=state.noise_std,
        epsilon=state.epsilon,
        dp_delta=state.dp_delta,
        parity_max_abs_diff=parity,
    )


def publish_round(
    store: BlobStore,
    *,
    model_name: str,
    dataset: str,
    experiment: str,
    round_number: int,
    params: dict[str, np.ndarray],
    scaler: dict[str, np.ndarray],
    state: RoundState,
    judge: Judge | None = None,
) -> PublishedRound:
    """Export, check against the NumPy model, judge, publish ``fl-<experiment>-r<n>``, promote if it won.

    The promotion is not in the stored manifest (written once, before the promotion is attempted).
    """
    features = get_contract(dataset).feature_names
    onnx_bytes = to_onnx(params, scaler, features)
    import onnxruntime as ort

    probe = np.random.default_rng(round_number).normal(size=(256, len(features))).astype(np.float32)
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    got = np.asarray(session.run(None, {"features": probe})[1])[:, 1]
    parity = float(np.max(np.abs(got - lr.predict_proba(params, scaler, probe))))
    if parity >= 1e-4:
        raise ValueError(f"the ONNX export differs from the federated model by {parity:.2e}")
    verdict: Verdict = judge(onnx_bytes) if judge else Skipped("no gate configured")
    judged = verdict if isinstance(verdict, Judged) else None
    version = f"fl-{experiment}-r{round_number}"
    models = ModelStore(store, model_name)
    description = describe(
        state, experiment=experiment, round_number=round_number, features=features, verdict=verdict, parity=parity
    )
    manifest = models.publish(version, onnx_bytes, description)
    models.write_card(manifest)
    promoted, reason = False, verdict.reason
    if judged and judged.promote:
        from shared.adapters.audit import service_actor

        try:
            models.promote(
                version,
                expected_etag=judged.pointer_etag,
                reason=f"federated round {round_number}: {reason}",
                actor=service_actor(f"federated round {round_number}"),
            )
            promoted = True
        except ConcurrentUpdateError as exc:
            reason = exc.reason
    report = FederatedReport(model_version=version, promoted=promoted, promotion_reason=reason, **(manifest.gate or {}))
    documents.write(store, layout.REPORTS, layout.federated_report(version), report)
    log.info(
        "published federated model %s (parity %.1e, gate %s): promoted=%s (%s)",
        version,
        parity,
        verdict.status,
        promoted,
        reason,
    )
    return PublishedRound(version, manifest, verdict, promoted, reason)
