"""A command's summary on stdout: one compact JSON line (for scripts), or aligned text (for people).

``--output json`` is the default whenever stdout is not a terminal (a pipe, a file, a test), so scripts that
read the last line of stdout as JSON keep working; ``--output table`` is the default on a terminal. A table
shows the summary's plain fields as ``name  value`` lines, and each list of records (or mapping of records)
as a table of its own under its name.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Literal, TextIO

type Output = Literal["table", "json"]
OUTPUTS: tuple[Output, ...] = ("table", "json")


def default_output(stream: TextIO | None = None) -> Output:
    """``table`` on a terminal, ``json`` otherwise."""
    stream = stream if stream is not None else sys.stdout
    try:
        return "table" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def emit(summary: dict[str, Any], output: Output | None = None) -> None:
    """Print ``summary`` on stdout as ``output`` says (default: :func:`default_output`)."""
    if (output or default_output()) == "json":
        print(json.dumps(summary, default=str, separators=(",", ":")), flush=True)
    else:
        print(render_table(summary), flush=True)


def render_table(summary: dict[str, Any]) -> str:
    """The summary as text: plain fields first (nested mappings flattened as ``a.b``), then one table per list
    of records."""
    fields: list[tuple[str, str]] = []
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    _collect(summary, "", fields, tables)
    lines: list[str] = []
    if fields:
        width = max(len(k) for k, _ in fields)
        lines += [f"{k.ljust(width)}  {v}" for k, v in fields]
    for name, rows in tables:
        lines += ["", f"{name}:", *_grid(rows)]
    return "\n".join(lines) if lines else "(nothing)"


def _collect(
    doc: dict[str, Any], prefix: str, fields: list[tuple[str, str]], tables: list[tuple[str, list[dict[str, Any]]]]
) -> None:
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            tables.append((name, [{"name": k, **v} for k, v in value.items()]))
        elif isinstance(value, dict) and value:
            _collect(value, f"{name}.", fields, tables)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((name, value))
        else:
            fields.append((name, _cell(value)))


def _grid(rows: list[dict[str, Any]]) -> list[str]:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    line = "  ".join
    return [
        line(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
        *(line(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells),
    ]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value):
        return ", ".join(str(v) for v in value) if value else "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)
