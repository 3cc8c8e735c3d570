"""The model's input columns as the learners see them: names, which are categories, which is the amount.

``Features`` is a list of names (every learner takes one) that also carries what LightGBM and the
other families must know of the columns: the positions of the categorical ones (their values are the
codes of ``shared.domain.encoding``) and the position of the amount, from the contract's roles, never
from a column's name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shared.domain.contract import DatasetContract
from shared.domain.encoding import categorical_features


class Features(list[str]):
    """Input column names, with ``categorical`` (positions) and ``amount`` (a name, or ``None``)."""

    categorical: tuple[int, ...]
    amount: str | None

    def __init__(self, names: Iterable[str], *, categorical: Sequence[int] = (), amount: str | None = None) -> None:
        super().__init__(names)
        self.categorical = tuple(categorical)
        self.amount = amount if amount in self else None

    @classmethod
    def of(cls, contract: DatasetContract) -> Features:
        names = contract.model_features  # the behavioural features are numbers, after the transaction's own
        categories = set(categorical_features(contract))
        return cls(names, categorical=[i for i, n in enumerate(names) if n in categories], amount=contract.amount)


def categorical_of(features: Sequence[str]) -> tuple[int, ...]:
    """The categorical positions of ``features`` (none for a plain list of names)."""
    return tuple(getattr(features, "categorical", ()))


def amount_of(features: Sequence[str]) -> int | None:
    """The position of the amount in ``features`` (``None`` for a plain list, or a contract without one)."""
    name = getattr(features, "amount", None)
    return features.index(name) if name is not None and name in features else None
