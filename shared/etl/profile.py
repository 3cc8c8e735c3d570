"""Running per-column statistics of the valid rows, and the data-quality report pages."""

from __future__ import annotations

import html
import math
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa

from shared.etl.arrays import floats


class ColumnProfile:
    """Count, min, max and mean of every numeric column, updated batch by batch; with ``reference`` (edges
    per column), also the count of values in each of those bins."""

    def __init__(self, reference: dict[str, list[float]] | None = None) -> None:
        self.stats: dict[str, dict[str, float]] = {}
        self.empty: Counter[str] = Counter()
        self.edges = {k: np.asarray(v, dtype=np.float64) for k, v in (reference or {}).items()}
        self.binned: dict[str, np.ndarray] = {k: np.zeros(e.size + 1, dtype=np.int64) for k, e in self.edges.items()}

    def update(self, table: pa.Table, empty_counts: dict[str, int]) -> None:
        self.empty.update(empty_counts)
        for name, col in zip(table.column_names, table.columns, strict=True):
            if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)) or len(col) == 0:
                continue
            values = floats(col)
            if col.null_count:  # a nullable column's missing values are counted as empty, not as numbers
                values = values[~np.isnan(values)]
                if values.size == 0:
                    continue
            if name in self.edges:
                edges = self.edges[name]
                self.binned[name] += np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
            s = self.stats.setdefault(name, {"count": 0, "sum": 0.0, "min": math.inf, "max": -math.inf})
            s["count"] += values.size
            s["sum"] += float(values.sum())
            s["min"] = min(s["min"], float(values.min()))
            s["max"] = max(s["max"], float(values.max()))

    def as_dict(self) -> dict[str, dict[str, float | int | None]]:
        out: dict[str, dict[str, float | int | None]] = {}
        for name, s in self.stats.items():
            n = int(s["count"])
            out[name] = {
                "count": n,
                "empty": int(self.empty.get(name, 0)),
                "min": s["min"] if n else None,
                "max": s["max"] if n else None,
                "mean": s["sum"] / n if n else None,
            }
        return out


def render_html(report: dict[str, Any]) -> str:
    """A readable data-quality page for one file."""
    esc = html.escape
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(str(report.get(k)))}</td></tr>"
        for k in (
            "status",
            "reason",
            "source",
            "rows_in",
            "rows_valid",
            "rows_quarantined",
            "rows_duplicate",
            "input_bytes",
            "parquet_bytes",
            "etl_seconds",
            "read_mode",
            "text_batches",
            "dataset_version",
            "fraud_rate",
        )
        if k in report
    ) + "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in report.get("timing", {}).items())
    reasons = (
        "".join(f"<tr><td>{esc(r)}</td><td>{c}</td></tr>" for r, c in report.get("quarantine_reasons", {}).items())
        or "<tr><td colspan=2>none</td></tr>"
    )
    columns = "".join(
        f"<tr><td>{esc(n)}</td><td>{s['count']}</td><td>{s['empty']}</td>"
        f"<td>{_fmt(s['min'])}</td><td>{_fmt(s['max'])}</td><td>{_fmt(s['mean'])}</td></tr>"
        for n, s in report.get("columns", {}).items()
    )
    dropped = ", ".join(report.get("dropped_columns", [])) or "none"
    schema = ", ".join(f"{f['name']}: {f['type']}" for f in report.get("schema", []))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Data quality: {esc(str(report.get("source")))}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head><body>
<h1>Data quality report</h1><table>{rows}</table>
<h2>Quarantine reasons</h2>{_reasons_plot(report.get("quarantine_reasons", {}))}
<table><tr><th>reason</th><th>rows</th></tr>{reasons}</table>
{_distributions(report.get("reference_drift") or {})}
<h2>Columns (valid rows)</h2><table><tr><th>column</th><th>count</th><th>empty (all rows)</th>
<th>min</th><th>max</th><th>mean</th></tr>{columns}</table>
<h2>Dropped columns</h2><p>{esc(dropped)}</p><h2>Schema</h2><p>{esc(schema)}</p>
</body></html>"""


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"


def _reasons_plot(reasons: dict[str, int]) -> str:
    """The quarantine reasons as bars (a sentence when there is none)."""
    if not reasons:
        return "<p>No row was quarantined.</p>"
    from shared.domain.pages import svg

    top = list(reasons.items())[:12][::-1]

    def draw(ax: Any) -> None:
        ax.barh([r[:60] for r, _ in top], [c for _, c in top], color="#a33")
        ax.set_xlabel("rows")
        ax.tick_params(axis="y", labelsize=7)

    return f"<div id='quarantine-reasons'>{svg(draw, width=7, height=max(2.0, 0.35 * len(top)))}</div>"


def _distributions(drift: dict[str, Any]) -> str:
    """Each feature's valid rows in the champion's training deciles beside the training shares, with PSI."""
    features = drift.get("features") or {}
    if not features:
        return "<h2>Distributions</h2><p>No champion with a training profile yet: nothing to compare with.</p>"
    from shared.domain.pages import svg_grid

    def cell(name: str, f: dict[str, Any]) -> Any:
        def draw(ax: Any) -> None:
            x = range(len(f["expected"]))
            ax.bar([i - 0.2 for i in x], f["expected"], width=0.4, color="#9ab", label="training")
            ax.bar(
                [i + 0.2 for i in x], f["actual"], width=0.4, color="#b50" if f["psi"] > 0.1 else "#36c", label="file"
            )
            ax.set_title(f"{name}  PSI {f['psi']:.3f}", fontsize=7)
            ax.set_xticks([])
            ax.tick_params(axis="y", labelsize=5)

        return draw

    order = sorted(features.items(), key=lambda kv: -kv[1]["psi"])
    plots = svg_grid([cell(n, f) for n, f in order])
    return (
        f"<h2>Distributions against champion {html.escape(str(drift.get('champion')))}</h2>"
        "<p>Each feature's valid rows in the deciles of the champion's training data (grey: training, "
        "blue: this file, orange when PSI is above 0.1), most shifted first; the PSI is the drift check's.</p>"
        f"<div id='distributions'>{plots}</div>"
    )
