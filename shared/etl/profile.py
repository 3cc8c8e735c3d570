"""Running per-column statistics of the valid rows, and the data-quality report pages."""

from __future__ import annotations

import html
import math
from collections import Counter
from typing import Any

import pyarrow as pa

from shared.etl.arrays import floats


class ColumnProfile:
    """Count, min, max and mean of every numeric column, updated batch by batch."""

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, float]] = {}
        self.empty: Counter[str] = Counter()

    def update(self, table: pa.Table, empty_counts: dict[str, int]) -> None:
        self.empty.update(empty_counts)
        for name, col in zip(table.column_names, table.columns, strict=True):
            if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)) or len(col) == 0:
                continue
            values = floats(col)
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
<h2>Quarantine reasons</h2><table><tr><th>reason</th><th>rows</th></tr>{reasons}</table>
<h2>Columns (valid rows)</h2><table><tr><th>column</th><th>count</th><th>empty (all rows)</th>
<th>min</th><th>max</th><th>mean</th></tr>{columns}</table>
<h2>Dropped columns</h2><p>{esc(dropped)}</p><h2>Schema</h2><p>{esc(schema)}</p>
</body></html>"""


def _fmt(v: float | None) -> str:
    return "" if v is None else f"{v:.6g}"
