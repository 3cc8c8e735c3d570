"""What the federated unit tests share: a starting model, an update of one value, a clock the test moves."""

from __future__ import annotations

import numpy as np

from shared.federated.params import to_wire

INITIAL = {"coef": np.zeros(4, np.float32), "intercept": np.zeros(1, np.float32)}


def update(value: float, n: int = 4) -> bytes:
    return to_wire({"coef": np.full(n, value, np.float32), "intercept": np.array([value], np.float32)})


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now
