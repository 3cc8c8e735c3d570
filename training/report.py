"""HTML pages for a training run and a drift check, with plots as inline SVG (matplotlib, no pyplot state).

Input is the run's summary dict (what is also written as JSON), so a page can be rebuilt from
the JSON alone. Each page is one self-contained file: it opens from Blob, MLflow or disk.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

STYLE = """<style>body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1em}.alert{color:#b00;font-weight:bold}</style>"""
TOP_FEATURES = 15


def _svg(draw: Callable[[Any], None], width: float = 5.0, height: float = 3.6) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="tight")
    draw(fig.add_subplot())
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _table(rows: list[tuple[str, Any]]) -> str:
    return (
        "<table>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in rows)
        + "</table>"
    )


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def _metrics_table(columns: dict[str, dict[str, Any] | None]) -> str:
    keys = (
        "auc",
        "pr_auc",
        "precision",
        "recall",
        "f1",
        "frauds_caught",
        "frauds_missed",
        "false_alarms",
        "cost",
        "threshold",
    )
    present = {name: m for name, m in columns.items() if m}
    head = "".join(f"<th>{html.escape(name)}</th>" for name in present)
    body = "".join(
        f"<tr><th>{k}</th>" + "".join(f"<td>{_fmt(m.get(k))}</td>" for m in present.values()) + "</tr>" for k in keys
    )
    return f"<table><tr><th>test part</th>{head}</tr>{body}</table>"


def training_html(summary: dict[str, Any]) -> str:
    """The training report: decision, metrics beside the baseline and champion, and the plots."""
    esc = html.escape
    curves = summary.get("curves", {})
    threshold = summary.get("threshold")

    def cost(ax: Any) -> None:
        points = summary["cost_curve"]
        ax.plot([p["threshold"] for p in points], [p["cost"] for p in points], color="C0")
        if threshold is not None:
            ax.axvline(threshold, color="C3", linestyle="--", label=f"chosen {threshold:.2f}")
            ax.legend()
        ax.set(xlabel="threshold", ylabel="cost (validation)", title="Business cost by threshold")

    def roc(ax: Any) -> None:
        for name, c in curves.items():
            ax.plot(c["fpr"], c["tpr"], label=f"{name} (AUC {c['auc']:.3f})")
        ax.plot([0, 1], [0, 1], color="grey", linewidth=0.5)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test)")
        ax.legend(loc="lower right")

    def pr(ax: Any) -> None:
        for name, c in curves.items():
            ax.plot(c["recall"], c["precision"], label=f"{name} (AP {c['pr_auc']:.3f})")
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall (test)")
        ax.legend(loc="lower left")

    def importance(ax: Any) -> None:
        top = sorted(summary["feature_importance"].items(), key=lambda kv: kv[1], reverse=True)[:TOP_FEATURES]
        names, gains = [k for k, _ in reversed(top)], [v for _, v in reversed(top)]
        ax.barh(names, gains, color="C2")
        ax.set(xlabel="total gain", title=f"Top {len(top)} features")

    plots = [_svg(cost), _svg(roc), _svg(pr)]
    if summary.get("feature_importance"):
        plots.append(_svg(importance, height=4.5))
    drift = summary.get("drift") or {}
    drift_line = (
        f"<p class=alert>{esc(drift['message'])}</p>"
        if drift.get("alert")
        else f"<p>{esc(drift.get('message', 'drift not checked'))}</p>"
    )
    search = summary.get("search", {})
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Training {esc(str(summary.get("model_version")))}</title>{STYLE}</head><body>
<h1>Training run {esc(str(summary.get("model_version")))}</h1>
{
        _table(
            [
                ("promoted", summary.get("promoted")),
                ("why", summary.get("promotion_reason")),
                ("champion before", summary.get("champion_before")),
                ("dataset version", summary.get("dataset_version")),
                ("threshold", threshold),
                ("parity max |diff|", summary.get("parity_max_abs_diff")),
                (
                    "search",
                    f"{search.get('trials')} trials ({search.get('pruned')} pruned), stopped by "
                    f"{search.get('stopped_by')}, best validation PR-AUC {_fmt(search.get('best_pr_auc'))}",
                ),
                ("training seconds", summary.get("train_seconds")),
            ]
        )
    }
<h2>Test part</h2>{
        _metrics_table(
            {
                "new model": summary.get("metrics"),
                "logistic baseline": summary.get("baseline_metrics"),
                "champion": summary.get("champion_metrics"),
            }
        )
    }
<h2>Drift</h2>{drift_line}
<h2>Plots</h2><div class=plots>{"".join(plots)}</div>
<h2>Split</h2>{_table([(k, v) for k, v in summary.get("split", {}).items()])}
<h2>Hyperparameters</h2>{_table(sorted(summary.get("hyperparameters", {}).items()))}
</body></html>"""


def drift_html(drift: dict[str, Any]) -> str:
    """The drift report: verdict, PSI per feature as a bar chart and a table."""
    esc = html.escape
    features = drift["features"]
    order = sorted(features, key=lambda n: -features[n]["psi"])

    def bars(ax: Any) -> None:
        names = list(reversed(order))
        ax.barh(
            names, [features[n]["psi"] for n in names], color=["C3" if features[n]["drifted"] else "C0" for n in names]
        )
        ax.axvline(drift["psi_threshold"], color="grey", linestyle="--", label="drift threshold")
        ax.set(xlabel="PSI", title="Population stability index per feature")
        ax.legend(loc="lower right")

    rows = "".join(
        f"<tr><td>{esc(n)}</td><td>{features[n]['psi']:.4f}</td><td>{'yes' if features[n]['drifted'] else ''}</td></tr>"
        for n in order
    )
    verdict = f"<p class=alert>{esc(drift['message'])}</p>" if drift["alert"] else f"<p>{esc(drift['message'])}</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Drift report</title>{STYLE}</head><body>
<h1>Drift report</h1>{verdict}
{
        _table(
            [
                ("reference", drift.get("reference")),
                ("current", drift.get("current")),
                ("rows (reference / current)", f"{drift['rows_reference']} / {drift['rows_current']}"),
                ("drifted share", drift["drifted_share"]),
                ("PSI threshold", drift["psi_threshold"]),
            ]
        )
    }
{_svg(bars, width=6, height=max(3.0, 0.22 * len(order)))}
<table><tr><th>feature</th><th>PSI</th><th>drifted</th></tr>{rows}</table></body></html>"""
