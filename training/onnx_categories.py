"""LightGBM's categorical splits as numeric splits on indicator columns, so the ONNX ensemble stays its size.

onnxmltools turns a categorical split on a set of ``k`` categories into a chain of ``k`` ``BRANCH_EQ``
nodes, so a model with categories has much deeper trees in ONNX than in LightGBM (ONNX Runtime took
2.5x longer on one row and 4 to 6x on a batch than a numeric model of the same width). Instead, each
distinct (feature, category set) a split uses becomes an indicator column computed in front of the
ensemble, and the split becomes ``indicator <= 0.5``:

* the indicator is 0 when the category's code is in the set (LightGBM sends it left, and ``0 <= 0.5``
  goes left) and 1 otherwise;
* a missing value, a negative code or a code beyond every set is not in any set (LightGBM sends it
  right): 1;
* a code with a fraction is truncated towards zero first, as LightGBM's ``static_cast<int>`` does.

In the graph: per categorical feature, Gather its column, NaN -> -1 (Where, IsNaN), Clip to [-1, K],
Cast to int64, +1, and Gather the feature's table (row 0: missing or negative; row ``c + 1``: code
``c``; row ``K + 1``: beyond), which holds one indicator per set. The rewritten booster (numeric splits
only, on the wider input) is what onnxmltools converts; the parity check still compares the graph with
the original booster, so the rewrite is checked on every export.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import lightgbm as lgb
    import onnx

HEADER_LIST = re.compile(r"^(feature_names|feature_infos|monotone_constraints)=(.*)$", re.MULTILINE)
WIDENED = {"feature_names": None, "feature_infos": "[0:1]", "monotone_constraints": "0"}  # an indicator's entry


@dataclass(frozen=True)
class Indicators:
    """Per categorical input column, the category sets its splits use; their columns follow ``base`` in order."""

    base: int  # the first indicator's position in the ensemble's input
    sets: tuple[tuple[int, tuple[frozenset[int], ...]], ...]  # (input column, its sets), by column

    def __len__(self) -> int:
        return sum(len(s) for _, s in self.sets)

    def tables(self) -> list[tuple[int, np.ndarray]]:
        """Per column, the float32 table ``[K + 2, sets]`` indexed by ``clip(code, -1, K) + 1``."""
        out = []
        for column, sets in self.sets:
            top = max(max(s) for s in sets) + 1  # K: codes 0..K-1 can be in a set
            table = np.ones((top + 2, len(sets)), dtype=np.float32)
            for j, s in enumerate(sets):
                table[[c + 1 for c in s], j] = 0.0
            out.append((column, table))
        return out

    def values(self, x: np.ndarray) -> np.ndarray:
        """The indicator columns of ``x`` (the model's input), computed as the graph does."""
        parts = []
        for column, table in self.tables():
            codes = np.asarray(x[:, column], dtype=np.float32)
            codes = np.where(np.isnan(codes), np.float32(-1), codes)
            index = np.clip(codes, -1, len(table) - 2).astype(np.int64) + 1
            parts.append(table[index])
        return np.concatenate(parts, axis=1) if parts else np.empty((len(x), 0), np.float32)


def _line(tree: str, key: str) -> list[str] | None:
    found = re.search(rf"(?m)^{key}=(.*)$", tree)
    return found.group(1).split() if found else None


def _categorical_nodes(tree: str) -> list[tuple[int, int, frozenset[int]]]:
    """(node, input column, category set) of each categorical split of one tree."""
    kinds = _line(tree, "decision_type")
    if not kinds:
        return []
    features, thresholds = _line(tree, "split_feature") or [], _line(tree, "threshold") or []
    bounds = [int(v) for v in _line(tree, "cat_boundaries") or []]
    words = [int(v) for v in _line(tree, "cat_threshold") or []]
    out = []
    for node, kind in enumerate(kinds):
        if int(kind) & 1:
            at = int(float(thresholds[node]))
            members = {
                32 * w + bit
                for w, word in enumerate(words[bounds[at] : bounds[at + 1]])
                for bit in range(32)
                if (word >> bit) & 1
            }
            out.append((node, int(features[node]), frozenset(members)))
    return out


def _rewrite_tree(tree: str, position: dict[tuple[int, frozenset[int]], int]) -> str:
    nodes = _categorical_nodes(tree)
    if not nodes:
        return tree
    features, thresholds = _line(tree, "split_feature") or [], _line(tree, "threshold") or []
    kinds = _line(tree, "decision_type") or []
    for node, column, members in nodes:
        features[node] = str(position[(column, members)])
        thresholds[node] = "0.5"
        kinds[node] = "0"  # numerical, missing type None: the indicator is never missing
    tree = re.sub(r"(?m)^split_feature=.*$", "split_feature=" + " ".join(features), tree)
    tree = re.sub(r"(?m)^threshold=.*$", "threshold=" + " ".join(thresholds), tree)
    tree = re.sub(r"(?m)^decision_type=.*$", "decision_type=" + " ".join(kinds), tree)
    tree = re.sub(r"(?m)^num_cat=.*$", "num_cat=0", tree)
    return re.sub(r"(?m)^cat_(boundaries|threshold)=.*\n", "", tree)


def as_indicators(booster: lgb.Booster) -> tuple[lgb.Booster, Indicators]:
    """The same model over ``[x, indicators]`` with numeric splits only, and the indicators (none: unchanged)."""
    import lightgbm as lgb

    text = booster.model_to_string()
    head, *trees = re.split(r"(?m)^(?=Tree=)", text)
    found: dict[int, dict[frozenset[int], None]] = {}
    for tree in trees:
        for _, column, members in _categorical_nodes(tree):
            found.setdefault(column, {})[members] = None
    base = booster.num_feature()
    if not found:
        return booster, Indicators(base, ())
    sets = tuple((column, tuple(found[column])) for column in sorted(found))
    position, at = {}, base
    for column, column_sets in sets:
        for members in column_sets:
            position[(column, members)] = at
            at += 1
    names = [f"category_indicator_{i}" for i in range(at - base)]

    def widen(match: re.Match[str]) -> str:
        entry = WIDENED[match.group(1)]
        extra = names if entry is None else [entry] * len(names)
        return f"{match.group(1)}={match.group(2)} {' '.join(extra)}"

    head = re.sub(r"(?m)^max_feature_idx=.*$", f"max_feature_idx={at - 1}", head)
    head = HEADER_LIST.sub(widen, head)
    head = re.sub(r"(?m)^tree_sizes=.*\n", "", head)  # the trees change length; LightGBM then reads them in order
    rewritten = [_rewrite_tree(tree, position) for tree in trees]
    return lgb.Booster(model_str=head + "".join(rewritten)), Indicators(base, sets)


def indicator_nodes(
    indicators: Indicators, input_name: str, constants: dict[str, np.ndarray]
) -> tuple[list[onnx.NodeProto], list[str]]:
    """The nodes computing each column's indicators from ``input_name``, and their outputs in input order."""
    from onnx import TensorProto, helper

    constants |= {
        "category_minus_one": np.asarray(-1.0, dtype=np.float32),
        "category_one": np.asarray(1, dtype=np.int64),
        "category_axis": np.asarray([1], dtype=np.int64),
    }
    nodes, outputs = [], []
    for column, table in indicators.tables():
        p = f"category_{column}"
        constants |= {
            f"{p}_column": np.asarray([column], dtype=np.int64),
            f"{p}_top": np.asarray(len(table) - 2, dtype=np.float32),
            f"{p}_table": table,
        }
        nodes += [
            helper.make_node("Gather", [input_name, f"{p}_column"], [f"{p}_x"], axis=1),
            helper.make_node("IsNaN", [f"{p}_x"], [f"{p}_missing"]),
            helper.make_node("Where", [f"{p}_missing", "category_minus_one", f"{p}_x"], [f"{p}_filled"]),
            helper.make_node("Clip", [f"{p}_filled", "category_minus_one", f"{p}_top"], [f"{p}_clipped"]),
            helper.make_node("Cast", [f"{p}_clipped"], [f"{p}_code"], to=TensorProto.INT64),
            helper.make_node("Add", [f"{p}_code", "category_one"], [f"{p}_row"]),
            helper.make_node("Squeeze", [f"{p}_row", "category_axis"], [f"{p}_rows"]),
            helper.make_node("Gather", [f"{p}_table", f"{p}_rows"], [f"{p}_indicators"], axis=0),
        ]
        outputs.append(f"{p}_indicators")
    return nodes, outputs
