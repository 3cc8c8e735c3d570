"""The columns the client reads from the bank's table: the experiment's features, in order, and its label.

They are the server's dataset contract (its numeric features and its label), sent with the global
model in ``X-FL-Metadata``; this package installs without the server's code, so it reads them from
there rather than from a copy. ``Columns.from_metadata`` refuses what could not be a column list
(names that are not short plain strings, duplicates, the label among the features), since the
names become Spark column expressions. The client keeps the columns it opened the table with and
refuses a round whose columns differ (``BankClient.take_part``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fraudops_bank.errors import ParametersError

MAX_FEATURES = 4096  # the server's MAX_PARAMETERS bound per array, in columns
COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")  # a contract's column names are a subset of these


@dataclass(frozen=True)
class Columns:
    """The model's input columns, in order, and the label column (0 or 1) of the bank's table."""

    features: tuple[str, ...]
    label: str
    event_time: str | None = None  # when the table has it, the bank holds out its most recent rows to evaluate

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> Columns:
        """The columns the server's metadata names; ``ParametersError`` when they are absent or malformed."""
        features, label = meta.get("features"), meta.get("label")
        if not isinstance(features, list) or not isinstance(label, str):
            raise ParametersError(
                "the server's model metadata names no features and label: it predates the contract-driven client, "
                "or is not a fraudops function app"
            )
        names = [*features, label]
        bad = [repr(n)[:60] for n in names if not isinstance(n, str) or not COLUMN_NAME.fullmatch(n)]
        if bad:
            raise ParametersError(f"the server names columns that cannot be a table's: {', '.join(bad[:5])}")
        if not features or len(features) > MAX_FEATURES:
            raise ParametersError(f"the server names {len(features)} features; between 1 and {MAX_FEATURES} expected")
        if len(set(names)) != len(names):
            raise ParametersError("the server names a column twice among the features and the label")
        event_time = meta.get("event_time")
        if event_time is not None and (
            not isinstance(event_time, str) or not COLUMN_NAME.fullmatch(event_time) or event_time in names
        ):
            raise ParametersError("the server's event_time is not a column name apart from the features and label")
        return cls(tuple(features), label, event_time)

    @property
    def required(self) -> tuple[str, ...]:
        return (*self.features, self.label)

    def describe(self) -> str:
        """The columns in a sentence, for refusals (long lists shortened)."""
        shown = ", ".join(self.features[:8]) + (f" and {len(self.features) - 8} more" if len(self.features) > 8 else "")
        return f"the features {shown}, and the label {self.label}"
