"""What every benchmark does with its figures: a table on stdout, a JSON file, and the JSON as the last line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def report(result: dict[str, Any], path: Path) -> int:
    """Print ``result`` as an aligned table, write it to ``path``, print it as one JSON line; return 0."""
    width = max(map(len, result), default=0)
    for key, value in result.items():
        print(f"{key:>{width}} {value}")
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return 0
