"""How a contract's features become the model's float32 input, written once for training and serving.

* float and integer: their value; missing is NaN (LightGBM and the ONNX graph send NaN down the branch
  training learnt for missing values).
* boolean: 1 or 0; missing is NaN.
* categorical: the category's code, its position in the feature's vocabulary. A category the model
  never saw in training, and a missing one, are both NaN: the same branch, in LightGBM and in ONNX
  alike (``docs``: the unseen-category rule). The vocabulary is the contract's own list for a closed set
  (codes stable across retrains); for an open one, the categories of the training window, the
  ``MAX_CATEGORIES`` most frequent (first seen first among equals). It travels in the model's
  manifest, so a model is always served with the vocabulary it was trained with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from shared.domain.contract import ColumnType, DatasetContract

MAX_CATEGORIES = 1000


@dataclass(frozen=True)
class Vocabulary:
    """One categorical feature's categories: code ``i`` is ``values[i]``; any other value codes as NaN."""

    values: tuple[str, ...]
    _index: dict[str, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {v: float(i) for i, v in enumerate(self.values)})

    def codes(self, texts: Sequence[object] | np.ndarray) -> np.ndarray:
        """The float32 code of each value (NaN for a missing or unseen one)."""
        get, nan = self._index.get, float("nan")
        return np.fromiter((get(v, nan) for v in texts), dtype=np.float32, count=len(texts))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Encoding:
    """The features in input order, and the vocabulary of each categorical one."""

    features: tuple[str, ...]
    vocabularies: Mapping[str, Vocabulary] = field(default_factory=dict)

    @property
    def categorical(self) -> list[int]:
        """Input positions of the categorical features (LightGBM's ``categorical_feature``)."""
        return [i for i, name in enumerate(self.features) if name in self.vocabularies]

    def to_manifest(self) -> dict[str, list[str]]:
        return {name: list(v.values) for name, v in self.vocabularies.items()}

    @classmethod
    def from_manifest(cls, features: Sequence[str], categories: Mapping[str, Sequence[str]] | None) -> Encoding:
        return cls(tuple(features), {n: Vocabulary(tuple(v)) for n, v in (categories or {}).items()})

    def fill(self, x: np.ndarray, texts: Mapping[str, Sequence[object] | np.ndarray]) -> np.ndarray:
        """``x`` with each categorical column set to the codes of its ``texts`` (in place; returned)."""
        for j, name in enumerate(self.features):
            if name in self.vocabularies:
                x[:, j] = self.vocabularies[name].codes(texts[name])
        return x


def recode(x: np.ndarray, source: Encoding | None, target: Encoding) -> np.ndarray:
    """``x`` (codes of ``source``) in the codes of ``target``: the same categories, another model's numbering
    (a category ``target`` does not know becomes NaN). A copy when anything changes."""
    out = x
    for j, name in enumerate(target.features):
        theirs = target.vocabularies.get(name)
        ours = source.vocabularies.get(name) if source is not None else None
        if theirs is None or ours is None or theirs.values == ours.values:
            continue
        if out is x:
            out = np.array(x, dtype=np.float32)
        table = theirs.codes(ours.values)
        column = out[:, j]
        present = ~np.isnan(column)
        column[present] = table[column[present].astype(np.int64)]
    return out


def learn_vocabulary(
    contract: DatasetContract, name: str, seen: Sequence[str], counts: np.ndarray, *, limit: int = MAX_CATEGORIES
) -> Vocabulary:
    """The vocabulary of ``name``: the contract's list for a closed set; else the ``limit`` most frequent of
    the ``seen`` values (``counts`` rows each), the first seen first among equals."""
    col = contract.column(name)
    if col.type is not ColumnType.CATEGORICAL:
        raise ValueError(f"{name} is not a categorical column")
    if col.categories is not None:
        return Vocabulary(col.categories)
    order = np.argsort(-np.asarray(counts), kind="stable")[:limit]
    return Vocabulary(tuple(seen[i] for i in order if counts[i] > 0))


def categorical_features(contract: DatasetContract) -> list[str]:
    """The contract's categorical features, in input order."""
    return [n for n in contract.feature_names if contract.column(n).type is ColumnType.CATEGORICAL]
