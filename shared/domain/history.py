"""A dataset's history as the behavioural features read it: which columns, and each value's one text form.

Both paths build their input here: the training window (``training.window``, from curated Parquet) and the
online path (``shared.scoring.online``, from a request's or an event's columns). An entity key or a distinct
value is compared as text, so the two must write a value the same way: ``key_text`` is that one way (an
integer key read as a float, ``5.0``, is ``"5"``, as the integer it is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shared.domain.behaviour import Behaviour
from shared.domain.contract import DatasetContract
from shared.domain.windows import History


def read_columns(behaviour: Behaviour) -> tuple[list[str], list[str], list[str]]:
    """The entity key columns, the numeric columns and the distinct (text) columns the behaviour reads."""
    keys = _unique(
        [a.key for a in behaviour.aggregates]
        + [d.key for d in behaviour.distinct]
        + [k for _, k in behaviour.since_previous]
        + [k for _, k, _ in behaviour.amount_vs_mean]
        + [f.key for f in behaviour.fraud_share]
    )
    numbers = _unique([a.column for a in behaviour.aggregates if a.column])
    if behaviour.amount_vs_mean and behaviour.amount:
        numbers = _unique([*numbers, behaviour.amount])
    values = _unique([d.column for d in behaviour.distinct])
    return keys, numbers, values


def history_columns(contract: DatasetContract) -> list[str]:
    """Every column a history is built from: event time, transaction id, label, then what ``read_columns`` says."""
    keys, numbers, values = read_columns(contract.behaviour)
    roles = [contract.time_column.name if contract.time_column else None, contract.transaction_id]
    roles.append(contract.label.name if contract.label else None)
    return _unique([*(r for r in roles if r), *keys, *numbers, *values])


def recorded_columns(contract: DatasetContract) -> tuple[list[str], list[str]]:
    """What a prediction record adds for the behaviour to be computed again from it (the daily check, and the
    labelled rows fed back to training): (text columns, number columns) the record does not hold already (the
    features, the time, the transaction id and the customer are there under their own names)."""
    keys, numbers, values = read_columns(contract.behaviour)
    held = {*contract.feature_names, contract.transaction_id, contract.customer}
    if contract.time_column is not None:
        held.add(contract.time_column.name)
    return [c for c in _unique(keys + values) if c not in held], [c for c in numbers if c not in held]


def key_text(value: Any) -> str | None:
    """A key's or a distinct value's text: None when missing; a whole float as its integer."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return None
        if float(value).is_integer():
            return str(int(value))
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    return str(value)


def texts(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    return np.array([key_text(v) for v in values], dtype=object)


def history_of(
    contract: DatasetContract,
    time: np.ndarray,
    ids: Sequence[Any] | np.ndarray,
    columns: Mapping[str, Sequence[Any] | np.ndarray],
    label: np.ndarray | None = None,
    labelled_at: np.ndarray | None = None,
) -> History:
    """A ``History`` of ``columns`` (by name: the keys and distinct values as given, numbers as floats)."""
    keys, numbers, values = read_columns(contract.behaviour)
    held: dict[str, np.ndarray] = {}
    for name in keys + values:
        held[name] = texts(columns[name])
    for name in numbers:
        held[name] = np.asarray(columns[name], dtype=np.float64)
    return History(
        np.asarray(time, np.float64),
        texts(ids),
        held,
        None if label is None else np.asarray(label, np.float64),
        labelled_at,
    )


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
