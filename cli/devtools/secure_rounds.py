"""Secure rounds in one process, for tests and ``make bench-fl``: the banks' real step machine joined to the real
state machine by a transport that calls what the HTTP routes call (minus the routes and the HMAC check).

``Direct`` is one bank's transport; ``run_round`` steps every bank in turn until the round closes, skipping
the banks told to go silent after a given step (dropouts).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from fraudops_bank.secure import SecureParticipant
from fraudops_bank.status import RoundStatus
from shared.domain.documents.federated import RoundState
from shared.federated.rounds import Rounds
from shared.federated.secure import vector_length


class Direct:
    """One bank's transport straight into ``rounds``; counts the bytes it sends. ``tamper_keys`` lets a test
    play a hostile server that alters the key list it relays."""

    def __init__(
        self,
        rounds: Rounds,
        bank: str,
        digest: str,
        *,
        tamper_keys: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.rounds, self.bank, self.digest, self.tamper_keys = rounds, bank, digest, tamper_keys
        self.sent: list[tuple[str, bytes]] = []

    @property
    def bytes_sent(self) -> int:
        return sum(len(body) for _, body in self.sent)

    def post_signed(self, path: str, body: bytes) -> dict[str, Any]:
        n, what = int(path.split("/")[4]), path.rsplit("/", 1)[1]
        self.sent.append((what, body))
        phases = self.rounds.secure
        if what == "keys":
            return phases.advertise(n, self.bank, body, served_sha256=self.digest).public()
        if what == "shares":
            return phases.share(n, self.bank, body).public()
        if what == "masked":
            state = self.rounds.state(n)
            dims = sum(a.size for a in self.rounds.global_model(n).values())
            return phases.mask(n, self.bank, body, length=vector_length(state.kind, dims)).public()
        phases.unmask(n, self.bank, body)
        return self.rounds.progress(n).public()

    def get_json(self, path: str) -> dict[str, Any]:
        parts = path.split("/")
        n = int(parts[4])
        if parts[5] == "members":
            doc = dict(self.rounds.secure.keys(n))
            return self.tamper_keys(doc) if self.tamper_keys else doc
        return dict(self.rounds.secure.shares_for(n, parts[6]))


def status(rounds: Rounds, n: int) -> dict[str, Any]:
    """Round ``n`` as ``GET /api/federated/rounds/{n}`` answers it (a secure round moved on first)."""
    state = rounds.state(n)
    if state.status not in (RoundStatus.CLOSED, RoundStatus.AGGREGATING):
        state = rounds.progress(n)
    return state.public()


def run_round(
    rounds: Rounds,
    parts: list[SecureParticipant],
    *,
    silent: Collection[str] = (),
    silent_after: str = "masked sent",
    tick: Callable[[], None] | None = None,
    limit: int = 50,
) -> RoundState:
    """Step every bank in turn until the round closes; ``tick`` runs after a pass where no bank moved (a test
    moves its clock past a phase's deadline, as waiting for silent banks would)."""
    n = parts[0].round
    for _ in range(limit):
        before = [p.phase for p in parts]
        for p in parts:
            if p.bank in silent and p.phase == silent_after:
                continue
            p.step(status(rounds, n))
        if status(rounds, n)["status"] == RoundStatus.CLOSED:
            return rounds.state(n)
        if tick is not None and [p.phase for p in parts] == before:
            tick()
    raise RuntimeError(f"round {n} did not close: {status(rounds, n)}")
