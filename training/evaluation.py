"""Metrics and the cost-optimal decision threshold. NumPy/scikit-learn in, plain dicts out."""

from __future__ import annotations

import numpy as np

THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.01), 2)


def cost_curve(
    y: np.ndarray, p: np.ndarray, *, cost_fn: float, cost_fp: float, thresholds: np.ndarray = THRESHOLDS
) -> list[dict[str, float]]:
    """Business cost ``cost_fn * FN + cost_fp * FP`` at each threshold (fraud when p >= t)."""
    y = y.astype(bool)
    curve = []
    for t in thresholds:
        flagged = p >= t
        fn = int(np.sum(y & ~flagged))
        fp = int(np.sum(~y & flagged))
        curve.append({"threshold": float(t), "fn": fn, "fp": fp, "cost": cost_fn * fn + cost_fp * fp})
    return curve


def best_threshold(curve: list[dict[str, float]]) -> float:
    """The threshold of least cost; ties go to the lowest threshold (catch more fraud)."""
    return float(min(curve, key=lambda c: (c["cost"], c["threshold"]))["threshold"])


def evaluate(y: np.ndarray, p: np.ndarray, threshold: float, *, cost_fn: float, cost_fp: float) -> dict[str, float]:
    """ROC-AUC, PR-AUC and the fraud-class confusion figures at ``threshold``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y = y.astype(bool)
    flagged = p >= threshold
    tp = int(np.sum(y & flagged))
    fn = int(np.sum(y & ~flagged))
    fp = int(np.sum(~y & flagged))
    tn = int(y.size - tp - fn - fp)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    both_classes = 0 < y.sum() < y.size
    return {
        "auc": float(roc_auc_score(y, p)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both_classes else float("nan"),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "frauds_caught": tp,
        "frauds_missed": fn,
        "false_alarms": fp,
        "true_negatives": tn,
        "false_alarm_rate": fp / (fp + tn) if fp + tn else 0.0,
        "accuracy": (tp + tn) / y.size if y.size else 0.0,
        "cost": cost_fn * fn + cost_fp * fp,
        "threshold": float(threshold),
        "rows": int(y.size),
        "frauds": int(y.sum()),
    }


def curves(y: np.ndarray, p: np.ndarray, points: int = 200) -> dict[str, object]:
    """ROC and precision-recall curves, thinned to about ``points`` points each, for plots and reports."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)

    def thin(*arrays: np.ndarray) -> list[list[float]]:
        keep = np.unique(np.linspace(0, arrays[0].size - 1, min(points, arrays[0].size)).astype(int))
        return [np.round(a[keep], 5).tolist() for a in arrays]

    fpr_t, tpr_t = thin(fpr, tpr)
    precision_t, recall_t = thin(precision, recall)
    return {
        "auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "fpr": fpr_t,
        "tpr": tpr_t,
        "precision": precision_t,
        "recall": recall_t,
    }


def paired_auc_gap(
    y: np.ndarray, reference: np.ndarray, scores: np.ndarray, *, resamples: int = 200, seed: int = 0, pr: bool = False
) -> tuple[float, float]:
    """ROC-AUC (PR-AUC with ``pr``) of ``reference`` minus that of ``scores`` on ``y``, and its paired-bootstrap
    standard deviation.

    Both are scored on the same resampled rows, so the spread is the measurement noise of the gap
    itself: how far the gap of one test part can sit from the gap of the model.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    metric = average_precision_score if pr else roc_auc_score
    which = 1 if pr else 0
    rng = np.random.default_rng(seed)
    ranked_reference, ranked_scores = _Ranked(y, reference), _Ranked(y, scores)
    gaps = []
    for _ in range(resamples):
        rows = rng.integers(0, y.size, y.size)
        if 0 < y[rows].sum() < rows.size:
            counts = np.bincount(rows, minlength=y.size).astype(np.float64)
            gaps.append(ranked_reference.metrics(counts)[which] - ranked_scores.metrics(counts)[which])
    return float(metric(y, reference) - metric(y, scores)), float(np.std(gaps))


class _Ranked:
    """ROC-AUC and average precision of fixed scores on any resample of the rows, given as how often each row
    was drawn: the scores are sorted once, and a resample is a weighted pass over them (the same figures as
    scikit-learn's on the drawn rows, ties included, without sorting them again)."""

    def __init__(self, y: np.ndarray, scores: np.ndarray) -> None:
        self.order = np.argsort(-np.asarray(scores, np.float64), kind="mergesort")
        ordered = np.asarray(scores, np.float64)[self.order]
        self.last = np.r_[ordered[1:] != ordered[:-1], True]  # the last row of each run of equal scores
        self.y = np.asarray(y, np.float64)[self.order]

    def metrics(self, counts: np.ndarray) -> tuple[float, float]:
        w = counts[self.order]
        tps = np.cumsum(w * self.y)[self.last]
        fps = np.cumsum(w * (1.0 - self.y))[self.last]
        moved = np.diff(np.r_[0.0, tps + fps]) > 0  # a score none of the drawn rows has is no threshold
        tps, fps = tps[moved], fps[moved]
        positives, negatives = tps[-1], fps[-1]
        roc = float(np.trapezoid(np.r_[0.0, tps / positives], np.r_[0.0, fps / negatives]))
        recall = tps / positives
        ap = float(np.sum(np.diff(np.r_[0.0, recall]) * (tps / (tps + fps))))
        return roc, ap


def intervals(
    y: np.ndarray, p: np.ndarray, *, resamples: int = 200, seed: int = 0, level: float = 0.95
) -> dict[str, list[float]]:
    """Bootstrap percentile intervals of ROC-AUC and PR-AUC on ``y``: how far one test part's figure can be
    from the model's (a few hundred frauds carry a spread of a percent or more)."""
    rng = np.random.default_rng(seed)
    ranked = _Ranked(y, p)
    roc, pr = [], []
    for _ in range(resamples):
        rows = rng.integers(0, y.size, y.size)
        if 0 < y[rows].sum() < rows.size:
            got = ranked.metrics(np.bincount(rows, minlength=y.size).astype(np.float64))
            roc.append(got[0])
            pr.append(got[1])
    if not roc:
        return {}
    tail = 100 * (1 - level) / 2
    return {
        "auc": [round(float(v), 4) for v in np.percentile(roc, [tail, 100 - tail])],
        "pr_auc": [round(float(v), 4) for v in np.percentile(pr, [tail, 100 - tail])],
    }


AMOUNT_BANDS = ((0.0, 10.0), (10.0, 100.0), (100.0, 1000.0), (1000.0, float("inf")))
DAY_PARTS = (
    ("night (00-06)", 0, 6),
    ("morning (06-12)", 6, 12),
    ("afternoon (12-18)", 12, 18),
    ("evening (18-24)", 18, 24),
)


def segments(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float,
    *,
    amount: np.ndarray | None,
    seconds: np.ndarray | None,
    cost_fn: float,
    cost_fp: float,
    time_zone: str | None = None,
) -> dict[str, list[dict[str, object]]]:
    """The figures at ``threshold`` per amount band and per part of the day, so a model that fails one group
    shows it. ``seconds``: since 1970 UTC when ``time_zone`` is given (hours are that zone's), else since the
    start of the data (as Kaggle's creditcard ``Time``)."""
    out: dict[str, list[dict[str, object]]] = {}

    def row(name: str, keep: np.ndarray) -> dict[str, object]:
        if not keep.any():
            return {"segment": name, "rows": 0, "frauds": 0}
        figures = evaluate(y[keep], p[keep], threshold, cost_fn=cost_fn, cost_fp=cost_fp)
        names = ("rows", "frauds", "auc", "recall", "precision", "false_alarm_rate", "frauds_missed")
        return {"segment": name, **{k: None if figures[k] != figures[k] else figures[k] for k in names}}  # NaN: None

    if amount is not None:
        out["amount"] = [
            row(f"{lo:g}-{hi:g}" if np.isfinite(hi) else f"{lo:g}+", (amount >= lo) & (amount < hi))
            for lo, hi in AMOUNT_BANDS
        ]
    if seconds is not None:
        if time_zone is not None:
            import pandas as pd

            local = pd.to_datetime(np.asarray(seconds), unit="s", utc=True).tz_convert(time_zone)
            hour = np.asarray(local.hour)
        else:
            hour = (np.asarray(seconds) // 3600) % 24
        out["time_of_day"] = [row(name, (hour >= lo) & (hour < hi)) for name, lo, hi in DAY_PARTS]
    return out
