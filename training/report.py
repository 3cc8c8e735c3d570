"""HTML pages for a training run and a drift check, with plots as inline SVG (matplotlib, no pyplot state).

Input is the run's summary dict (what is also written as JSON), so a page can be rebuilt from
the JSON alone. Each page is one self-contained file: it opens from Blob, MLflow or disk.
"""

from __future__ import annotations

import html
from typing import Any

from shared.domain.pages import STYLE, fmt, svg, table

TOP_FEATURES = 15
_svg, _table, _fmt = svg, table, fmt


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
        "false_alarm_rate",
        "accuracy",
        "cost",
        "threshold",
    )
    present = {name: m for name, m in columns.items() if m}
    head = "".join(f"<th>{html.escape(name)}</th>" for name in present)
    body = "".join(
        f"<tr><th>{k}</th>" + "".join(f"<td>{_fmt(m.get(k))}</td>" for m in present.values()) + "</tr>" for k in keys
    )
    return f"<table><tr><th>test part</th>{head}</tr>{body}</table>"


def _confusion(metrics: dict[str, Any] | None) -> str:
    if not metrics or "true_negatives" not in metrics:
        return ""
    m = {k: _fmt(metrics.get(k)) for k in ("frauds_caught", "frauds_missed", "false_alarms", "true_negatives")}
    return (
        "<table><tr><th>backtest model, test part</th><th>flagged</th><th>not flagged</th></tr>"
        f"<tr><th>fraud</th><td>{m['frauds_caught']}</td><td>{m['frauds_missed']}</td></tr>"
        f"<tr><th>genuine</th><td>{m['false_alarms']}</td><td>{m['true_negatives']}</td></tr></table>"
    )


def _comparison(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>no comparison in this run</p>"
    keys = ("family", "pr_auc", "pr_auc_sd", "auc", "cost", "threshold", "fit_seconds", "score_ms_per_1k", "note")
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k)))}</td>" for k in keys) + "</tr>" for r in rows)
    from training.families import winner

    best = winner(rows)
    served = next((r for r in rows if r["family"] == "lightgbm"), None)
    if best and served and best["family"] != "lightgbm":
        verdict = (
            f"<p class=alert>{html.escape(best['family'])} would have won on these folds (mean PR-AUC "
            f"{best['pr_auc']:.4f} against LightGBM's {served['pr_auc']:.4f}); the served family stays LightGBM "
            "(ONNX export, TreeSHAP).</p>"
        )
    else:
        verdict = "<p>LightGBM, the served family, has the best mean PR-AUC on these folds.</p>"
    return (
        f"<p>Every family fitted on each rolling-origin fold's training rows and scored on its later validation "
        f"block; cost at each family's own cost-optimal threshold on its out-of-fold probabilities; fit seconds per "
        f"fold, scoring milliseconds per 1,000 rows.</p><table><tr>{head}</tr>{body}</table>{verdict}"
    )


def _shap_plots(explanations: dict[str, Any]) -> list[str]:
    importance = explanations.get("importance") or []
    plots = []
    if importance:
        top = importance[:30]

        def bars(ax: Any) -> None:
            ax.barh([r["feature"] for r in reversed(top)], [r["mean_abs_shap"] for r in reversed(top)], color="C4")
            ax.set(xlabel="mean |SHAP| (log-odds)", title=f"Global importance, top {len(top)} (TreeSHAP)")

        plots.append(_svg(bars, width=5.5, height=max(3.0, 0.2 * len(top))))
    for name, example in (explanations.get("examples") or {}).items():

        def waterfall(ax: Any, example: dict[str, Any] = example, name: str = name) -> None:
            steps = [*example["steps"], {"feature": "other features", "value": None, "shap": example["others"]}]
            start = example["base_log_odds"]
            labels, lefts, widths = [], [], []
            for step in steps:
                labels.append(step["feature"] if step["value"] is None else f"{step['feature']} = {step['value']:.3g}")
                lefts.append(start if step["shap"] >= 0 else start + step["shap"])
                widths.append(abs(step["shap"]))
                start += step["shap"]
            colors = ["C3" if s["shap"] >= 0 else "C0" for s in steps]
            ax.barh(
                list(reversed(labels)), list(reversed(widths)), left=list(reversed(lefts)), color=list(reversed(colors))
            )
            ax.axvline(example["base_log_odds"], color="grey", linewidth=0.5)
            ax.set(
                xlabel="log-odds of fraud",
                title=f"{name}, median of {example.get('rows', 1)}: p = {example['probability']:.3f}",
            )

        plots.append(_svg(waterfall, width=5.5, height=4.2))
    return plots


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
        ax.set(xlabel="threshold", ylabel="cost (out of fold)", title="Business cost by threshold")

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
    explanations = summary.get("explanations") or {}
    shap_plots = _shap_plots(explanations)
    figures = summary.get("figures") or {}
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
                    f"{search.get('stopped_by')}, kept mean fold log loss {_fmt(search.get('cv_log_loss'))} "
                    f"(PR-AUC {_fmt(search.get('cv_pr_auc'))})",
                ),
                ("training seconds", summary.get("train_seconds")),
            ]
        )
    }
<h2>Which model each figure belongs to</h2>{_table(sorted(figures.items()))}
<h2>Test part</h2>{
        _metrics_table(
            {
                "new model (backtest)": summary.get("metrics"),
                "logistic baseline": summary.get("baseline_metrics"),
                "champion": summary.get("champion_metrics"),
            }
        )
    }
{_confusion(summary.get("metrics"))}
<h2>Model comparison (same folds)</h2>{_comparison(summary.get("models_comparison") or [])}
<h2>Explanations of the published model</h2>
<p>TreeSHAP on {explanations.get("rows", 0)} test rows; each example is the feature-wise median of the ten most
confident caught frauds, or false alarms, of the test part: never one transaction, whose values would outlive an
erasure here (the published model has seen these rows: they show its reasoning, not its accuracy).</p>
<div class=plots>{"".join(shap_plots)}</div>
<h2>Drift</h2>{drift_line}
<h2>Plots</h2><div class=plots>{"".join(plots)}</div>
<h2>Split</h2>{_table([(k, v) for k, v in summary.get("split", {}).items()])}
<h2>Hyperparameters</h2>{_table(sorted(summary.get("hyperparameters", {}).items()))}
<h2>Derived features</h2>{_derived(summary.get("derived_features") or [])}
</body></html>"""


def _derived(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "<p>None: the published model uses the contract's features alone.</p>"
    rows = []
    for e in entries:
        if e.get("kind") == "linear":
            weights = sorted(zip(e["of"], e["weights"], strict=True), key=lambda fw: -abs(fw[1]))[:5]
            heaviest = ", ".join(f"{name} {w:+.3f}" for name, w in weights)
            described = f"logistic regression's log-odds over the standardised inputs (heaviest: {heaviest})"
            rows.append((e["name"], described))
        else:
            rows.append((e["name"], f"standardised {e['of'][0]} times standardised {e['of'][1]}"))
    return (
        "<p>Computed inside the ONNX graph from the contract's features, measured on the training rows: products "
        "of the pairs whose splits nest most in a first fit, and the linear score when the search chose it. "
        "Explanations give half of each product's share to each of its two features, and the linear score's "
        "share to the inputs in proportion to their terms.</p>" + _table(rows)
    )


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
