"""What runs on the Dask workers: plain module-level functions of one part, so workers import the same code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from training.distributed.source import PART, ROW

if TYPE_CHECKING:
    from shared.domain.encoding import Encoding
    from shared.scoring.derived import Derived


def sample(part: Any, fraction: float, seed: int) -> Any:
    """A uniform sample of one part, in its order; the same rows for the same part and seed."""
    if fraction >= 1.0 or not len(part):
        return part
    rng = np.random.default_rng([seed, int(part[PART].iloc[0])])
    return part[rng.random(len(part)) < fraction]


def inputs(part: Any, features: list[str], derived: Derived | None, names: list[str]) -> Any:
    """What the booster takes, on a worker: the contract's features with the derived columns appended."""
    import pandas as pd

    x = part[features].to_numpy(np.float32)
    wide = x if derived is None else derived.apply(x)
    return pd.DataFrame(wide, columns=names, index=part.index)


def score(part: Any, features: list[str], models: dict[str, Any], encoding: Encoding | None = None) -> Any:
    """Probabilities of each model on one part's rows, on a worker. A model given as ``(onnx bytes, its
    encoding)`` learnt other category codes: the part's (``encoding``'s) are recoded into its own first."""
    import pandas as pd

    from shared.domain.encoding import recode
    from training.model import Model
    from training.onnx_export import onnx_probabilities

    x = part[features].to_numpy(np.float32)
    out: dict[str, Any] = {ROW: part[ROW].to_numpy(np.int64)}
    for name, model in models.items():
        if not len(part):
            out[name] = np.empty(0)
        elif isinstance(model, tuple):
            onnx_bytes, own = model
            out[name] = onnx_probabilities(onnx_bytes, recode(x, encoding, own))
        elif isinstance(model, bytes):
            out[name] = onnx_probabilities(model, x)
        elif isinstance(model, Model):
            out[name] = model.predict(x)
        else:
            out[name] = model.predict_proba(x)[:, 1]
    return pd.DataFrame(out)
