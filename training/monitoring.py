"""The drift check: the newest curated data against the champion's training profile.

Run inside every retraining (before the new model is trained, so the verdict describes the
data the champion is facing) and on its own by ``fraudops drift``. Writes
``drift/<name>.json`` (a ``DriftReport`` document) and ``.html`` in ``reports`` and returns the report.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters import documents
from shared.adapters.model_store import ModelStore
from shared.domain import drift, layout
from shared.domain.contracts import get_contract
from shared.domain.documents import training as stored
from shared.domain.documents.model import ModelManifest
from shared.domain.encoding import Encoding
from shared.domain.errors import ModelNotAvailableError
from shared.domain.results import as_dict
from training.data import coded_matrix, newest_files
from training.report import drift_html

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.config import TrainingConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriftReport:
    """Drift of newly curated data against the champion's training data (``checked`` is False when it could not be)."""

    checked: bool
    alert: bool
    message: str
    champion: str | None = None
    reference: str | None = None
    current: str | None = None
    rows_reference: int = 0
    rows_current: int = 0
    psi_threshold: float | None = None
    alert_share: float | None = None
    drifted_features: list[str] = field(default_factory=list)
    drifted_share: float = 0.0
    features: dict[str, Any] = field(default_factory=dict)
    report: str | None = None


def check_drift(
    store: BlobStore,
    *,
    config: TrainingConfig,
    files: list[str] | None = None,
    current: tuple[str, np.ndarray] | None = None,
    report_name: str | None = None,
) -> DriftReport:
    """Compare the newest curated file's parts (of ``files``) or ``current`` (name, matrix) with the champion's profile.

    ``checked`` is False, with the reason in ``message``, when there is no champion or it has no profile.
    """
    contract = get_contract(config.dataset_name)
    features = contract.feature_names
    models = ModelStore(store, config.model_name)
    champion, _ = models.champion()
    if champion is None:
        return DriftReport(checked=False, alert=False, message="no champion yet; drift not checked")
    try:
        manifest = ModelManifest.model_validate(models.manifest(champion))
        reference = manifest.training_profile
    except ModelNotAvailableError as exc:
        return DriftReport(checked=False, alert=False, message=f"champion unreadable ({exc.reason})")
    if not reference:
        return DriftReport(
            checked=False, alert=False, message=f"champion {champion} has no training profile; drift not checked"
        )
    if current is None:
        names = newest_files(store, contract.name, files)
        encoding = Encoding.from_manifest(features, manifest.categories) if manifest.categories else None
        current = (layout.display(layout.CURATED, names[0]), coded_matrix(store, names, contract, encoding))
    result = drift.compare(
        reference,
        current[1],
        features,
        psi_threshold=config.drift_psi_threshold,
        alert_share=config.drift_alert_share,
    )
    n, total = len(result["drifted_features"]), len(features)
    top = ", ".join(result["drifted_features"][:5])
    name = report_name or current[0].rsplit("/", 1)[-1].removesuffix(".parquet")
    report = DriftReport(
        checked=True,
        reference=f"training data of champion {champion}",
        current=current[0],
        champion=champion,
        message=(
            f"drift: {n} of {total} features shifted (PSI > {config.drift_psi_threshold:g}), "
            f"at or above the alert share {config.drift_alert_share:g}: {top}"
        )
        if result["alert"]
        else f"no drift alert: {n} of {total} features shifted" + (f" ({top})" if n else ""),
        report=layout.display(layout.REPORTS, layout.drift_report(name)),
        **result,
    )
    document = as_dict(report, drop=("report",))
    documents.write(store, layout.REPORTS, layout.drift_report(name), stored.DriftReport.model_validate(document))
    store.put_bytes(
        layout.REPORTS,
        layout.drift_report(name, "html"),
        drift_html(document).encode(),
        content_type="text/html; charset=utf-8",
    )
    (log.warning if report.alert else log.info)("%s", report.message)
    return report
