"""How typed results become JSON: the one rendering for the CLI's summary line and the stored reports.

Results cross layers as frozen dataclasses with named fields (``EtlOutcome``, ``StreamOutcome``...);
only the edges (the CLI, the reports, HTTP) turn them into dictionaries, here.
"""

from __future__ import annotations

import dataclasses
from typing import Any


def as_dict(result: Any, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """``result`` (a dataclass) as a JSON-ready dict, without the fields named in ``drop``."""
    if not dataclasses.is_dataclass(result) or isinstance(result, type):
        raise TypeError(f"{type(result).__name__} is not a dataclass instance")
    return {k: v for k, v in dataclasses.asdict(result).items() if k not in drop}
