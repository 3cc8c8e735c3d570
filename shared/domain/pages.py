"""Building blocks of the self-contained HTML reports: inline SVG plots (matplotlib, no pyplot state),
key-value tables and number formatting. One home for every report page (training, drift, monitoring)."""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

STYLE = """<style>body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}
.plots{display:flex;flex-wrap:wrap;gap:1em}.alert{color:#b00;font-weight:bold}</style>"""


def svg(draw: Callable[[Any], None], width: float = 5.0, height: float = 3.6) -> str:
    """``draw(axes)`` rendered as an inline ``<svg>`` element."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="tight")
    draw(fig.add_subplot())
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def svg_grid(draws: list[Callable[[Any], None]], *, columns: int = 6, cell: tuple[float, float] = (2.2, 1.6)) -> str:
    """Small multiples: each ``draw(axes)`` in its own cell of one inline ``<svg>``."""
    from matplotlib.figure import Figure

    rows = max((len(draws) + columns - 1) // columns, 1)
    fig = Figure(figsize=(cell[0] * columns, cell[1] * rows), layout="tight")
    for i, draw in enumerate(draws):
        draw(fig.add_subplot(rows, columns, i + 1))
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def table(rows: list[tuple[str, Any]]) -> str:
    """A two-column table of names and values, escaped."""
    return (
        "<table>"
        + "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(fmt(v))}</td></tr>" for k, v in rows)
        + "</table>"
    )
