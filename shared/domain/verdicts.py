"""The champion/challenger gate's answer, as the gate (``training/gate.py``) gives it to whoever publishes.

``Judged`` carries the threshold, the test metrics and whether to promote; ``Skipped`` says why a
candidate could not be judged (no curated data, one class only...). Stored manifests and reports
hold ``as_dict`` of either; ``pointer_etag`` (the champion pointer to promote against) is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from shared.domain.results import as_dict


@dataclass(frozen=True)
class Skipped:
    """The candidate could not be judged; it is published ungated and never promoted."""

    reason: str
    status: Literal["skipped"] = "skipped"

    def record(self) -> dict[str, Any]:
        return as_dict(self)


@dataclass(frozen=True)
class Judged:
    """Judged on the curated data's test part: the cost-chosen threshold, metrics, and the promotion decision."""

    dataset_version: str
    split: dict[str, Any]
    threshold: float
    metrics: dict[str, float]
    champion: str | None
    champion_metrics: dict[str, float] | None
    baseline_metrics: dict[str, float]  # the logistic floor a first model must clear (same parts)
    promote: bool
    reason: str
    cost_fn: float
    cost_fp: float
    pointer_etag: str | None = field(default=None, repr=False)
    status: Literal["judged"] = "judged"

    def record(self) -> dict[str, Any]:
        """What manifests and reports keep (everything but the pointer's ETag)."""
        return as_dict(self, drop=("pointer_etag",))


Verdict = Judged | Skipped
