"""The federated service the HTTP routes call: the global model, a round's state, a signed update, a forced close.

One object per request (building it reads nothing): the rounds of ``FL_EXPERIMENT`` configured from
``FederatedConfig``, whose closed model rounds are published through the gate and tracked
(``shared.federated.close``), and the banks' keys that signed updates are checked against.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shared.adapters.bank_keys import KeyStore
from shared.adapters.storage import BlobStore
from shared.domain.config import FederatedConfig
from shared.domain.contracts import get_contract
from shared.domain.documents.federated import RoundState
from shared.federated.auth import verify
from shared.federated.close import RoundTracker, publisher
from shared.federated.config import RoundConfig
from shared.federated.export import Judge
from shared.federated.headers import parse_examples, parse_metrics
from shared.federated.params import to_npz
from shared.federated.rounds import Rounds


@dataclass(frozen=True)
class GlobalModel:
    """What a bank downloads: the round to train for, its parameters and the shared scaler as one ``.npz``."""

    round: int
    npz: bytes
    metadata: dict[str, object]  # experiment, round, kind, aggregator

    @property
    def metadata_json(self) -> str:
        return json.dumps(self.metadata)


class FederatedService:
    """The rounds of the configured experiment, as the routes use them."""

    def __init__(
        self,
        *,
        store: BlobStore,
        config: FederatedConfig,
        keys: KeyStore,
        judge: Judge | None = None,
        track: RoundTracker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.config, self.keys, self.clock = store, config, keys, clock
        on_close = publisher(store, config=config, judge=judge, track=track)
        self.rounds = Rounds(store, config.fl_experiment, RoundConfig.of(config), clock=clock, on_close=on_close)

    def global_model(self) -> GlobalModel:
        """The model of the round banks should train for now (repairing what a crash between two writes left)."""
        state = self.rounds.ensure_open()
        n = state.round
        arrays = self.rounds.global_model(n)
        scaler = self.rounds.scaler()
        if scaler is not None:
            arrays.update({f"scaler_{k}": v for k, v in scaler.items()})
        contract = get_contract(self.config.dataset_name)
        label = contract.label.name if contract.label is not None else None
        meta: dict[str, object] = {
            "experiment": self.config.fl_experiment,
            "round": n,
            "kind": "statistics" if n == 0 else "model",
            "aggregator": state.aggregator,
            # the banks' clients read these columns of their tables: the contract is the one home of the list
            "dataset": contract.name,
            "contract_input_sha256": contract.input_sha256,
            "features": list(contract.feature_names),
            "label": label,
        }
        return GlobalModel(n, to_npz(arrays), meta)

    def round_state(self, n: int) -> RoundState:
        return self.rounds.state(n)

    def submit(self, n: int, *, headers: Mapping[str, str], path: str, body: bytes) -> RoundState:
        """A bank's update to round ``n``, once its signature is verified (``AuthError`` otherwise); the
        examples and metrics come from the signed ``X-FL-Examples`` and ``X-FL-Metrics`` headers."""
        bank = verify(headers, "POST", path, body, keys=self.keys, store=self.store, now=self.clock())
        examples = parse_examples(headers.get("x-fl-examples", ""))
        metrics = parse_metrics(headers.get("x-fl-metrics", "{}"))
        return self.rounds.submit(n, bank, body, examples, metrics)

    def force_close(self, n: int, *, actor: str, route: str) -> RoundState:
        """An admin's forced aggregation of round ``n`` (it also repairs a failed publication), audited."""
        from shared.adapters.audit import AuditLog
        from shared.domain.audit import Act

        closed = self.rounds.aggregate(n, force=True)
        AuditLog(self.store).record(
            Act("admin_call", actor, f"forced aggregation of round {n}", {"route": route, "status": str(closed.status)})
        )
        return closed
