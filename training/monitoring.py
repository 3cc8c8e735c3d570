"""The drift check: the newest curated data against the champion's training profile.

Run inside every retraining (before the new model is trained, so the verdict describes the
data the champion is facing) and on its own by ``fraudops drift``. Writes
``reports/drift/<name>.json`` and ``.html`` and returns the report.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.adapters.model_store import ModelStore
from shared.domain.contract import get_contract
from shared.domain.errors import ModelNotAvailableError
from training import drift
from training.data import load_files, matrix, newest_files
from training.report import drift_html

if TYPE_CHECKING:
    from shared.adapters.storage import BlobStore
    from shared.domain.settings import Settings

log = logging.getLogger(__name__)


def check_drift(
    store: BlobStore,
    settings: Settings,
    *,
    files: list[str] | None = None,
    current: tuple[str, np.ndarray] | None = None,
    report_name: str | None = None,
) -> dict[str, Any]:
    """Compare the newest curated file's parts (of ``files``) or ``current`` (name, matrix) with the champion's profile.

    Returns ``{"checked": False, "message": ...}`` when there is no champion or it has no profile.
    """
    contract = get_contract(settings.dataset_name)
    features = contract.feature_names
    models = ModelStore(store, settings.model_name)
    champion, _ = models.champion()
    if champion is None:
        return {"checked": False, "alert": False, "message": "no champion yet; drift not checked"}
    try:
        reference = models.manifest(champion).get("training_profile")
    except ModelNotAvailableError as exc:
        return {"checked": False, "alert": False, "message": f"champion unreadable ({exc.reason})"}
    if not reference:
        return {
            "checked": False,
            "alert": False,
            "message": f"champion {champion} has no training profile; drift not checked",
        }
    if current is None:
        names = newest_files(store, contract.name, files)
        current = (f"curated/{names[0]}", matrix(load_files(store, names, features), features))
    result = drift.compare(
        reference,
        current[1],
        features,
        psi_threshold=settings.drift_psi_threshold,
        alert_share=settings.drift_alert_share,
    )
    n, total = len(result["drifted_features"]), len(features)
    top = ", ".join(result["drifted_features"][:5])
    result.update(
        checked=True,
        reference=f"training data of champion {champion}",
        current=current[0],
        champion=champion,
        message=(
            f"drift: {n} of {total} features shifted (PSI > {settings.drift_psi_threshold:g}), "
            f"at or above the alert share {settings.drift_alert_share:g}: {top}"
        )
        if result["alert"]
        else f"no drift alert: {n} of {total} features shifted" + (f" ({top})" if n else ""),
    )
    name = report_name or current[0].rsplit("/", 1)[-1].removesuffix(".parquet")
    store.put_bytes(
        "reports", f"drift/{name}.json", json.dumps(result, indent=1).encode(), content_type="application/json"
    )
    store.put_bytes(
        "reports", f"drift/{name}.html", drift_html(result).encode(), content_type="text/html; charset=utf-8"
    )
    result["report"] = f"reports/drift/{name}.json"
    (log.warning if result["alert"] else log.info)("%s", result["message"])
    return result
