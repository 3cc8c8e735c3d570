"""The monitoring page: the verdicts first, then one panel per question, each a plot (inline SVG).

Built from the run's stored report alone (``monitoring_html(MonitoringReport)``), so a page can be rebuilt
from the report; one self-contained file with no script. The panels are the workbook's
(``infra/modules/workbook.bicep``): traffic, latency, share flagged, score distribution, realised
precision and recall, drift, dead letters, retraining history and federated rounds. A panel
without data still draws its axes with the reason, so an empty panel is visibly empty, not missing.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from shared.domain.documents.monitoring import MonitoringReport
from shared.domain.pages import STYLE, fmt, svg

PANELS = (
    "traffic",
    "latency",
    "flagged",
    "scores",
    "realised",
    "drift",
    "deadletters",
    "retrains",
    "rounds",
)
COLOURS = {"ok": "#2a7", "warning": "#c80", "critical": "#b00", "no_data": "#888"}


def _empty(ax: Any, why: str) -> None:
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_xticks([])
    ax.set_yticks([])


def _days_axis(ax: Any, days: list[str]) -> None:
    step = max(len(days) // 8, 1)
    ax.set_xticks(range(0, len(days), step), [d[5:] for d in days[::step]], rotation=45, fontsize=7)


def _series(values: list[Any]) -> list[float]:
    return [float("nan") if v is None else float(v) for v in values]


def _traffic(h: dict[str, Any]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        x = range(len(h["days"]))
        ax.bar(x, h["http"], label="HTTP", color="#36c")
        ax.bar(x, h["stream"], bottom=h["http"], label="stream", color="#9bd")
        ax.set_title("Predictions served per day")
        ax.legend(fontsize=7)
        _days_axis(ax, h["days"])

    return draw


def _latency(h: dict[str, Any]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        if all(v is None for v in h["latency_p95_ms"]):
            _empty(ax, "no HTTP requests in the window")
            return
        x = range(len(h["days"]))
        ax.plot(x, _series(h["latency_p50_ms"]), marker="o", label="p50")
        ax.plot(x, _series(h["latency_p95_ms"]), marker="o", label="p95")
        ax.set_title("HTTP scoring latency (ms)")
        ax.legend(fontsize=7)
        _days_axis(ax, h["days"])

    return draw


def _flagged(h: dict[str, Any]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        if all(v is None for v in h["share_flagged"]):
            _empty(ax, "no traffic in the window")
            return
        ax.plot(range(len(h["days"])), _series(h["share_flagged"]), marker="o", color="#b50")
        ax.set_title("Share of transactions flagged")
        _days_axis(ax, h["days"])

    return draw


def _scores(doc: MonitoringReport) -> Callable[[Any], None]:
    shares = doc.score_shares

    def draw(ax: Any) -> None:
        if not shares:
            _empty(ax, "no traffic today, or no champion score profile")
            return
        labels = [f"<{e:g}" for e in shares["edges"]] + ["rest"]
        x = range(len(labels))
        ax.bar([i - 0.2 for i in x], shares["reference"], width=0.4, label="champion at training")
        ax.bar([i + 0.2 for i in x], shares["live"], width=0.4, label=f"served {doc.day}")
        ax.set_xticks(list(x), labels, rotation=60, fontsize=7)
        ax.set_title(f"Score distribution (PSI {fmt(doc.score_psi)})")
        ax.legend(fontsize=7)

    return draw


def _realised(doc: MonitoringReport) -> Callable[[Any], None]:
    rows = [r for r in doc.realised if r["day"] != "all"]

    def draw(ax: Any) -> None:
        labelled = [r for r in rows if r["labelled"]]
        if not labelled:
            _empty(ax, "no labels for the window's predictions yet")
            return
        names = [f"{r['day'][5:]} {r['model_version'][:8]}" for r in labelled]
        x = range(len(labelled))
        ax.plot(x, _series([r["precision"] for r in labelled]), marker="o", label="precision")
        ax.plot(x, _series([r["recall"] for r in labelled]), marker="s", label="recall")
        ax.axhline(0.8, color="#c80", lw=0.8, ls="--")
        ax.axhline(0.6, color="#b00", lw=0.8, ls="--")
        ax.set_ylim(0, 1.05)
        ax.set_xticks(list(x), names, rotation=45, fontsize=6)
        ax.set_title("Realised precision and recall (labelled)")
        ax.legend(fontsize=7)

    return draw


def _drift(doc: MonitoringReport) -> Callable[[Any], None]:
    psi = doc.feature_psi

    def draw(ax: Any) -> None:
        if not psi:
            _empty(ax, "no traffic today, or no champion training profile")
            return
        top = list(psi.items())[:15][::-1]
        ax.barh([n for n, _ in top], [v for _, v in top], color="#57a")
        ax.axvline(0.1, color="#c80", lw=0.8, ls="--")
        ax.axvline(0.3, color="#b00", lw=0.8, ls="--")
        ax.set_title("Feature drift today (PSI, top 15)")
        ax.tick_params(axis="y", labelsize=7)

    return draw


def _deadletters(h: dict[str, Any]) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        ax.bar(range(len(h["days"])), h["deadlettered"], color="#a33")
        ax.set_title("Stream events dead-lettered per day")
        _days_axis(ax, h["days"])

    return draw


def _retrains(h: dict[str, Any]) -> Callable[[Any], None]:
    runs = h["retrains"]

    def draw(ax: Any) -> None:
        if not runs:
            _empty(ax, "no retraining run yet")
            return
        x = range(len(runs))
        ax.scatter(
            list(x),
            [1] * len(runs),
            c=["#2a7" if r["status"] == "succeeded" else "#b00" for r in runs],
            s=60,
        )
        ax.set_yticks([])
        ax.set_xticks(list(x), [r["at"][:16].replace("T", " ") for r in runs], rotation=60, fontsize=6)
        ax.set_title("Retraining runs (green succeeded, red failed)")

    return draw


def _rounds(h: dict[str, Any]) -> Callable[[Any], None]:
    rounds = h["rounds"]

    def draw(ax: Any) -> None:
        if not rounds:
            _empty(ax, "no federated round yet")
            return
        colours = {"closed": "#2a7", "open": "#36c", "aggregating": "#c80"}
        ax.bar(
            [str(r["round"]) for r in rounds],
            [r["participants"] for r in rounds],
            color=[colours.get(r["status"], "#888") for r in rounds],
        )
        ax.set_title("Federated rounds: updates received (blue open, green closed)")

    return draw


def _verdicts(verdicts: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td style='color:{COLOURS[v['level']]};font-weight:bold'>{html.escape(v['level'])}</td>"
        f"<td>{html.escape(v['check'])}</td><td>{html.escape(v['message'])}</td></tr>"
        for v in verdicts
    )
    return f"<table id='verdicts'><tr><th>level</th><th>check</th><th>what it says</th></tr>{rows}</table>"


def _realised_table(rows: list[dict[str, Any]]) -> str:
    keys = (
        "model_version",
        "day",
        "predictions",  # layout: not a blob (a column)
        "labelled",
        "coverage",
        "frauds",
        "caught",
        "missed",
        "false_alarms",
        "precision",
        "recall",
        "cost",
        "label_delay_hours_median",
    )
    head = "".join(f"<th>{k}</th>" for k in keys)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r[k]))}</td>" for k in keys) + "</tr>" for r in rows)
    return f"<table id='realised'><tr>{head}</tr>{body}</table>"


def monitoring_html(doc: MonitoringReport) -> str:
    """The page for one monitoring run's report."""
    h = doc.history
    drawers = {
        "traffic": _traffic(h),
        "latency": _latency(h),
        "flagged": _flagged(h),
        "scores": _scores(doc),
        "realised": _realised(doc),
        "drift": _drift(doc),
        "deadletters": _deadletters(h),
        "retrains": _retrains(h),
        "rounds": _rounds(h),
    }
    panels = "".join(
        f"<section class='panel' id='panel-{name}'>{svg(drawers[name], width=5.2, height=3.4)}</section>"
        for name in PANELS
    )
    level = doc.level
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Monitoring {html.escape(doc.day)}</title>"
        f"{STYLE}</head><body><h1>Monitoring {html.escape(doc.day)}: "
        f"<span style='color:{COLOURS.get(level, '#000')}'>{html.escape(level)}</span></h1>"
        f"<p>Champion {html.escape(str(doc.champion))}; {doc.served_today} predictions served on "
        f"{html.escape(doc.day)}; realised performance over {html.escape(' to '.join(doc.window))}.</p>"
        f"<h2>Verdicts</h2>{_verdicts(doc.verdicts)}<h2>Panels</h2><div class='plots'>{panels}</div>"
        f"<h2>Realised performance</h2>{_realised_table(doc.realised)}</body></html>"
    )
