"""Model cards: what a published model is for, what it learnt from, how well it does and for whom, written from
its manifest as Markdown and HTML next to the model (``models/<name>/<version>/model_card.*``) and logged to
MLflow. One card for every published version, retrained (LightGBM) or federated (logistic regression).

A card is a list of sections, each made of paragraphs and tables; one renderer writes them as Markdown and
another as HTML, so the two never say different things.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from shared.domain.contract import DatasetContract
from shared.domain.documents.model import FEDERATED, ModelManifest

Row = list[Any]


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[tuple[list[str], list[Row]]] = field(default_factory=list)


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | tuple) and len(v) == 2 and all(isinstance(x, int | float) for x in v):
        return f"{v[0]:.4g} to {v[1]:.4g}"
    return str(v)


def sections(manifest: ModelManifest) -> list[Section]:
    """The card's content from ``manifest`` (what ``ModelStore.publish`` wrote)."""
    federated = manifest.kind == FEDERATED
    contract = _contract_of(manifest)
    meaning = contract.roles.meaning if contract is not None and contract.roles else "fraud"
    what = (
        f"transactions of dataset {contract.name} ({contract.description.rstrip('.')})"
        if contract is not None
        else f"transactions of dataset {manifest.dataset or 'n/a'}"
    )
    metrics = manifest.metrics or {}
    intervals = manifest.metric_intervals or {}
    split = manifest.split or {}
    out = [
        Section(
            "Intended use and limits",
            [
                f"Scores {what} with the probability that each is {meaning}, and flags those at or above the "
                f"threshold, chosen to minimise {_fmt(manifest.cost_fn)} x missed cases of {meaning} + "
                f"{_fmt(manifest.cost_fp)} x false alarms.",
                "For: ranking and flagging transactions for a fraud investigator's review, in real time or in "
                "batch. Not for: decisions about a customer without a person's review, credit or other decisions, "
                "data in another feature space, or a population unlike the training data (watch the live drift "
                "of the monitoring report).",
                "Known limits: the figures come from one time-ordered test part of a few hundred frauds (see the "
                "intervals); frauds unlike those in the training window are not learnt; the probabilities are "
                "calibrated to the training window's fraud rate.",
            ],
        ),
        Section(
            "Model",
            tables=[
                (
                    ["field", "value"],
                    [
                        ["version", manifest.version],
                        ["kind", "federated logistic regression" if federated else "LightGBM, served as ONNX"],
                        ["created", manifest.created_at],
                        ["ONNX sha256", manifest.sha256],
                        ["ONNX / training parity (max abs diff)", manifest.parity_max_abs_diff],
                    ],
                )
            ],
        ),
    ]
    data_rows: list[Row] = [
        ["dataset", manifest.dataset],
        ["dataset version", manifest.dataset_version],
        ["curated files in the window", len(manifest.trained_on or []) or None],
        ["rows in the window", split.get("window_rows")],
        ["test part (rows, frauds)", f"{metrics.get('rows', 'n/a')}, {metrics.get('frauds', 'n/a')}"],
        [
            "fraud rate of the test part",
            metrics["frauds"] / metrics["rows"] if metrics.get("rows") and "frauds" in metrics else None,
        ],
    ]
    personal = ", ".join(contract.personal_names) if contract is not None else ""
    privacy = f"Personal columns ({personal}) are pseudonymised before anything is stored." if personal else ""
    out.append(Section("Data", [privacy] if privacy else [], [(["field", "value"], data_rows)]))
    if contract is not None:
        out.append(_features(contract, manifest))
    figures = manifest.figures or {}
    metric_rows = [
        ["ROC-AUC", metrics.get("auc"), intervals.get("auc")],
        ["PR-AUC", metrics.get("pr_auc"), intervals.get("pr_auc")],
        ["recall at the threshold", metrics.get("recall"), None],
        ["precision at the threshold", metrics.get("precision"), None],
        ["false-alarm rate at the threshold", metrics.get("false_alarm_rate"), None],
        ["cost on the test part", metrics.get("cost"), None],
    ]
    out.append(
        Section(
            "Metrics",
            [figures.get("metrics") or "Measured on rows the measured model never saw.", "Intervals: 95% bootstrap."],
            [(["metric", "value", "95% interval"], metric_rows)],
        )
    )
    out.append(
        Section(
            "Threshold and costs",
            tables=[
                (
                    ["field", "value"],
                    [
                        ["threshold", manifest.threshold],
                        ["cost of a missed fraud", manifest.cost_fn],
                        ["cost of a false alarm", manifest.cost_fp],
                    ],
                )
            ],
        )
    )
    segment_tables = []
    names = {"amount": "amount band", "time_of_day": "time of day"}
    for key, rows in (manifest.segments or {}).items():
        header = [names.get(key, key), "rows", "frauds", "ROC-AUC", "recall", "precision", "false-alarm rate"]
        body = [
            [
                r["segment"],
                r["rows"],
                r["frauds"],
                r.get("auc"),
                r.get("recall"),
                r.get("precision"),
                r.get("false_alarm_rate"),
            ]
            for r in rows
        ]
        segment_tables.append((header, body))
    banks = manifest.bank_reports or {}
    if banks:
        keys = sorted({k for b in banks.values() for k in (b.get("metrics") or {})})
        body = [
            [bank, b.get("examples"), *[(b.get("metrics") or {}).get(k) for k in keys]]
            for bank, b in sorted(banks.items())
        ]
        segment_tables.append((["bank", "examples", *keys], body))
    out.append(
        Section(
            "Performance per segment",
            [
                "By amount band and time of day on the test part"
                + ("; per bank as each bank reported it" if banks else "")
            ]
            if segment_tables
            else ["No segment figures in this version's manifest."],
            segment_tables,
        )
    )
    shap = manifest.shap_importance or []
    if shap:
        top = [[r["feature"], r["mean_abs_shap"]] for r in shap[:10]]
        out.append(
            Section(
                "Top features", ["Mean absolute TreeSHAP value on the test part."], [(["feature", "mean |SHAP|"], top)]
            )
        )
    elif manifest.feature_importance:
        ranked = sorted(manifest.feature_importance.items(), key=lambda kv: -abs(kv[1]))[:10]
        out.append(
            Section(
                "Top features",
                ["Largest absolute weights or gains."],
                [(["feature", "weight"], [list(kv) for kv in ranked])],
            )
        )
    drift = manifest.drift_at_training
    out.append(
        Section(
            "Drift at training",
            [
                drift["message"]
                if drift
                else "Not checked for this version (no champion to compare with, or a federated round)."
            ],
        )
    )
    if federated:
        out.append(
            Section(
                "Federated training and privacy",
                [
                    "Trained by federated averaging: each bank trained on its own data and sent signed model updates; "
                    "no bank's rows left the bank."
                    + (
                        " Secure aggregation: the server saw only the sum of the banks' clipped steps, never one "
                        "bank's; the totals below are sums over the banks, and each bank keeps its own figures."
                        if manifest.fl_mode == "secure"
                        else ""
                    )
                ],
                [
                    (
                        ["field", "value"],
                        [
                            ["experiment, round", f"{manifest.experiment}, {manifest.round}"],
                            ["participating banks", ", ".join(manifest.participants or []) or None],
                            ["mode", manifest.fl_mode],
                            ["aggregator", manifest.aggregator],
                            *[
                                [f"banks' total: {k}", round(v) if k == "examples" else v]
                                for k, v in sorted((manifest.bank_metrics or {}).items())
                            ],
                            ["clip bound (L2 of an update)", manifest.clip_bound],
                            ["noise multiplier", manifest.noise_multiplier],
                            ["epsilon (differential privacy)", manifest.epsilon],
                            ["delta", manifest.dp_delta],
                        ],
                    )
                ],
            )
        )
    return out


def _contract_of(manifest: ModelManifest) -> DatasetContract | None:
    """The contract of the manifest's dataset, when this deployment knows it (a card is written without it)."""
    from shared.domain.contracts import UnknownDataset, get_contract

    if not manifest.dataset:
        return None
    try:
        return get_contract(manifest.dataset)
    except UnknownDataset:
        return None


def _features(contract: DatasetContract, manifest: ModelManifest) -> Section:
    """The model's inputs as the contract describes them (categories: how many the model learnt)."""
    rows: list[Row] = []
    for name in manifest.feature_names or contract.feature_names:
        if name not in contract.names:
            continue
        col = contract.column(name)
        kind = str(col.type) + (" (may be missing)" if col.nullable else "")
        if name in manifest.categories:
            kind += f", {len(manifest.categories[name])} categories learnt"
        rows.append([name, kind, col.unit or "", col.description or ""])
    note = "A category the model never saw is scored as a missing value." if manifest.categories else ""
    return Section("Features", [note] if note else [], [(["feature", "type", "unit", "description"], rows)])


def markdown(manifest: ModelManifest) -> str:
    title = f"# Model card: {manifest.model_name} {manifest.version}\n"
    parts = [title]
    for s in sections(manifest):
        parts.append(f"\n## {s.title}\n")
        parts += [f"\n{p}\n" for p in s.paragraphs]
        for header, rows in s.tables:
            parts.append("\n| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n")
            parts += ["| " + " | ".join(_fmt(v).replace("|", "\\|") for v in row) + " |\n" for row in rows]
    return "".join(parts)


def html_page(manifest: ModelManifest) -> str:
    from shared.domain.pages import STYLE

    esc = html.escape
    title = f"Model card: {manifest.model_name} {manifest.version}"
    body = [f"<h1>{esc(title)}</h1>"]
    for s in sections(manifest):
        body.append(f"<h2>{esc(s.title)}</h2>")
        body += [f"<p>{esc(p)}</p>" for p in s.paragraphs]
        for header, rows in s.tables:
            head = "".join(f"<th>{esc(h)}</th>" for h in header)
            cells = "".join("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows)
            body.append(f"<table><tr>{head}</tr>{cells}</table>")
    head = f'<meta charset="utf-8"><title>{esc(title)}</title>{STYLE}'
    return f"<!doctype html><html><head>{head}</head><body>{''.join(body)}</body></html>"
