"""The bank side of the protocol: pull the global model, train locally, sign and post the update. Rows never leave."""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from shared.errors import FraudOpsError
from shared.federated import model as lr
from shared.federated.auth import sign
from shared.federated.params import from_npz, to_npz


class ProtocolError(FraudOpsError):
    """The server refused a request; ``status`` is its HTTP status."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class BankClient:
    """One bank talking to the federated API at ``base_url`` (an ``httpx.Client`` passed in)."""

    def __init__(self, http: Any, bank: str, key: bytes) -> None:
        self.http, self.bank, self.key = http, bank, key

    def model(self) -> tuple[int, str, dict[str, np.ndarray]]:
        """The round being trained, its kind (``statistics`` or ``model``) and the arrays (scaler included)."""
        r = self.http.get("/api/federated/model")
        if r.status_code != 200:
            raise ProtocolError(r.json().get("detail", r.text), r.status_code)
        meta = json.loads(r.headers["x-fl-metadata"])
        return int(meta["round"]), str(meta["kind"]), from_npz(r.content)

    def send(self, round_number: int, params: dict[str, np.ndarray], examples: int,
             metrics: dict[str, float]) -> dict[str, Any]:
        path = f"/api/federated/rounds/{round_number}/updates"
        body = to_npz(params)
        headers = sign(self.key, "POST", path, body, bank=self.bank, now=time.time(),
                       extra={"x-fl-examples": str(examples), "x-fl-metrics": json.dumps(metrics)})
        r = self.http.post(path, content=body, headers=headers)
        if r.status_code != 202:
            raise ProtocolError(r.json().get("detail", r.text), r.status_code)
        return dict(r.json())

    def take_part(self, x: np.ndarray, y: np.ndarray, *, steps: int = 50,
                  tamper: float | None = None) -> tuple[int, dict[str, Any]]:
        """One round: statistics in round 0, else a warm-started local fit. ``tamper`` scales the step (attacks)."""
        round_number, kind, arrays = self.model()
        if kind == "statistics":
            return round_number, self.send(round_number, lr.sufficient_statistics(x), len(x), {})
        scaler = {"mean": arrays["scaler_mean"], "scale": arrays["scaler_scale"]}
        start = {"coef": arrays["coef"], "intercept": arrays["intercept"]}
        local = lr.train_local(start, scaler, x, y, steps=steps)
        if tamper is not None:
            local = {k: (start[k] + tamper * (local[k] - start[k])).astype(np.float32) for k in local}
        metrics = {"local_loss": _log_loss(y, lr.predict_proba(local, scaler, x))}
        return round_number, self.send(round_number, local, len(x), metrics)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
