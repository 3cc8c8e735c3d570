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

import numpy as np

from fraudops_bank import secure_round
from fraudops_bank.roster import b64, identity_from_secret, sign
from shared.adapters.bank_keys import KeyStore
from shared.adapters.storage import BlobStore
from shared.domain.audit import Actor
from shared.domain.config import FederatedConfig
from shared.domain.contracts import get_contract
from shared.domain.documents.federated import RoundState, RoundStatus
from shared.federated.auth import verify
from shared.federated.banks import bank_id
from shared.federated.close import RoundTracker, publisher
from shared.federated.config import RoundConfig
from shared.federated.export import Judge
from shared.federated.headers import parse_examples, parse_metrics
from shared.federated.params import to_wire
from shared.federated.rounds import Rounds
from shared.federated.secure import vector_length


@dataclass(frozen=True)
class GlobalModel:
    """What a bank downloads: the round to train for, its parameters and the shared scaler as one safetensors body."""

    round: int
    body: bytes
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
        arrays, meta = self.served(state)
        return GlobalModel(state.round, to_wire(arrays), meta)

    def served(self, state: RoundState) -> tuple[dict[str, np.ndarray], dict[str, object]]:
        """What round ``state.round`` serves: its arrays and metadata, with their digest and (when the server has a
        signing key) its Ed25519 signature, which the banks check against the key their roster pins."""
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
            "event_time": contract.roles.event_time if contract.roles else None,
            "mode": state.mode,
            "min_clients": state.min_clients,
            "clip_bound": state.clip_bound,
            "clip_adaptive": state.clip_adaptive,
            "noise_multiplier": state.noise_multiplier,
            "dp_delta": state.dp_delta,
        }
        digest = secure_round.model_digest(arrays, meta)
        meta["model_sha256"] = digest
        key = self.config.fl_server_signing_key
        if key is not None:
            private = identity_from_secret(key.get_secret_value())
            message = secure_round.model_message(self.config.fl_experiment, n, digest)
            meta["signature"] = b64(sign(private, message))
        return arrays, meta

    # ---- secure rounds (shared.federated.secure) ----------------------------------------------------
    def _bank(self, headers: Mapping[str, str], path: str, body: bytes) -> str:
        return verify(headers, "POST", path, body, keys=self.keys, store=self.store, now=self.clock())

    def advertise(self, n: int, *, headers: Mapping[str, str], path: str, body: bytes) -> RoundState:
        """A bank's signed keys for secure round ``n``, refused unless it trained from the model the round serves."""
        bank = self._bank(headers, path, body)
        state = self.rounds.state(n)
        digest = str(self.served(state)[1]["model_sha256"])
        return self.rounds.secure.advertise(n, bank, body, served_sha256=digest)

    def round_keys(self, n: int) -> dict[str, object]:
        return self.rounds.secure.keys(n)

    def share(self, n: int, *, headers: Mapping[str, str], path: str, body: bytes) -> RoundState:
        return self.rounds.secure.share(n, self._bank(headers, path, body), body)

    def shares_for(self, n: int, bank: str) -> dict[str, object]:
        return self.rounds.secure.shares_for(n, bank_id(bank))

    def mask(self, n: int, *, headers: Mapping[str, str], path: str, body: bytes) -> RoundState:
        bank = self._bank(headers, path, body)
        state = self.rounds.state(n)
        dims = sum(a.size for a in self.rounds.global_model(n).values())
        return self.rounds.secure.mask(n, bank, body, length=vector_length(state.kind, dims))

    def unmask(self, n: int, *, headers: Mapping[str, str], path: str, body: bytes) -> RoundState:
        state = self.rounds.secure.unmask(n, self._bank(headers, path, body), body)
        return self.rounds.progress(n) if state.status != RoundStatus.CLOSED else state

    def round_state(self, n: int) -> RoundState:
        """Round ``n``'s state; a secure round is moved on first when a phase's deadline let it (polling banks
        are what moves a round whose silent members will not)."""
        state = self.rounds.state(n)
        if state.mode == "secure" and state.status not in (RoundStatus.AGGREGATING, RoundStatus.CLOSED):
            return self.rounds.progress(n)
        return state

    def submit(self, n: int, *, headers: Mapping[str, str], path: str, body: bytes) -> RoundState:
        """A bank's update to round ``n``, once its signature is verified (``AuthError`` otherwise); the
        examples and metrics come from the signed ``X-FL-Examples`` and ``X-FL-Metrics`` headers."""
        bank = verify(headers, "POST", path, body, keys=self.keys, store=self.store, now=self.clock())
        examples = parse_examples(headers.get("x-fl-examples", ""))
        metrics = parse_metrics(headers.get("x-fl-metrics", "{}"))
        return self.rounds.submit(n, bank, body, examples, metrics)

    def force_close(self, n: int, *, actor: str | Actor, route: str) -> RoundState:
        """An admin's forced aggregation of round ``n`` (it also repairs a failed publication), audited."""
        from shared.adapters.audit import AuditLog
        from shared.domain.audit import Act

        closed = self.rounds.aggregate(n, force=True)
        AuditLog(self.store).record(
            Act("admin_call", actor, f"forced aggregation of round {n}", {"route": route, "status": str(closed.status)})
        )
        return closed
