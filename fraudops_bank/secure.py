"""One bank's part in a secure round, as a step machine the client drives by polling the round's state.

``SecureParticipant.step(state)`` does whatever the round's current phase asks of this bank (send its
keys, its sealed shares, its masked vector, its unmasking shares) and says whether the bank is done;
``run`` polls the round and steps until it closes, and a simulation steps several banks in turn with
no thread. Each step checks what the server relays before acting on it: every member's keys signed
by the key the roster pins for that bank, every member trained from the model this bank was served,
the threshold the protocol sets, each share it receives matching its dealer's commitment, never a
self-mask share and a key share for the same bank, and never fewer than the threshold summed.
If a phase stalls and the server starts the round over, the bank starts over with fresh keys.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from fraudops_bank import secagg, secure_round
from fraudops_bank.errors import BankError, ParametersError
from fraudops_bank.roster import Roster, b64, sign, unb64
from fraudops_bank.status import RoundStatus

log = logging.getLogger(__name__)

AFTER_KEYS = (RoundStatus.SHARING, RoundStatus.MASKING, RoundStatus.UNMASKING, RoundStatus.AGGREGATING)


class SecureRoundRefused(BankError):
    """What the server relayed breaks the protocol: the bank stops taking part in the round."""


class Transport(Protocol):
    """The signed requests and reads a participant makes (``BankClient`` implements it over HTTP)."""

    def post_signed(self, path: str, body: bytes) -> dict[str, Any]: ...

    def get_json(self, path: str) -> dict[str, Any]: ...


def flatten(params: dict[str, np.ndarray]) -> np.ndarray:
    """Parameters as one float64 vector, in the order of their sorted names (the server's order too)."""
    return np.concatenate([np.asarray(params[k], np.float64).reshape(-1) for k in sorted(params)])


def statistics_vector(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Round 0's vector: the count as it is, then the sums and sums of squares in thousands (so they fit the
    secure sum's range at 16 fraction bits: a resolution of about 0.008 on a sum)."""
    vector = flatten(stats)
    vector[1:] /= secure_round.STATISTICS_UNIT
    return vector


@dataclass(frozen=True)
class Step:
    """A model round's vector before masking: the clipped, noised step and its four totals."""

    vector: np.ndarray
    norm: float
    clipped: bool


def model_vector(
    start: dict[str, np.ndarray],
    local: dict[str, np.ndarray],
    *,
    clip_bound: float,
    noise_std: float,
    examples: int,
    served_loss: float,
    local_loss: float,
    add_noise: Callable[[np.ndarray, float], np.ndarray],
    evaluation: dict[str, float] | None = None,
    count_noise_std: float = 0.0,
) -> Step:
    """The step from ``start`` to ``local`` clipped to ``clip_bound`` (L2), with this bank's share of the noise,
    followed by the totals the server may learn summed: examples, both losses times examples, clipped or not
    (noised with ``count_noise_std`` when privacy is on and the bound adaptive),
    and, from ``evaluation`` on the bank's held-out rows, their count and the served model's and the bank's
    own-data model's losses times that count (``EXTRAS`` on the server)."""
    step = flatten(local) - flatten(start)
    norm = float(np.linalg.norm(step))
    clipped = norm > clip_bound
    if clipped:
        step = step * (clip_bound / norm)
    if noise_std > 0:
        step = add_noise(step, noise_std)
    unit = examples / secure_round.COUNT_UNIT
    held = (evaluation or {}).get("holdout_rows", 0.0) / secure_round.COUNT_UNIT
    served_held = (evaluation or {}).get("served_holdout_loss", 0.0) * held
    alone_held = (evaluation or {}).get("alone_holdout_loss", 0.0) * held
    was_clipped = np.array([float(clipped)])
    if count_noise_std > 0:  # adaptive clipping with privacy: the count of clipped steps is noised too
        was_clipped = add_noise(was_clipped, count_noise_std)
    extras = np.array([unit, served_loss * unit, local_loss * unit, *was_clipped, held, served_held, alone_held])
    return Step(np.concatenate([step, extras]), norm, clipped)


@dataclass
class SecureParticipant:
    """This bank in secure round ``round``: its vector, its keys, and what it has received so far."""

    transport: Transport
    bank: str
    experiment: str
    round: int
    kind: str
    vector: np.ndarray  # float64, before encoding
    model_sha256: str
    identity_key: bytes
    roster: Roster
    clip_bound: float | None
    noise_multiplier: float | None
    phase: str = "keys"
    restarts: int = -1
    members: list[str] = field(default_factory=list)
    threshold: int = 0
    c_sk: bytes = b""
    s_sk: bytes = b""
    seed: bytes = b""
    peers: dict[str, dict[str, Any]] = field(default_factory=dict)
    received: dict[str, dict[str, secagg.Share]] = field(default_factory=dict)
    shared: list[str] = field(default_factory=list)
    outcome: str = ""
    on_masked: Callable[[], None] | None = None  # the bank's ledger records the round before its vector leaves
    evaluation: dict[str, float] = field(default_factory=dict)  # this bank's own figures, never sent as they are

    @property
    def path(self) -> str:
        return f"/api/federated/rounds/{self.round}"

    # ---- driving ----------------------------------------------------------------------------------------
    def step(self, state: dict[str, Any]) -> bool:
        """Do what the round's phase asks of this bank; True once the bank has nothing more to do."""
        status = state["status"]
        if status == RoundStatus.CLOSED:
            summed = state.get("summed", [])
            self.outcome = "summed" if self.bank in summed else "not summed"
            return True
        if status == RoundStatus.OPEN and (self.phase == "keys" or self.bank not in state.get("adverts", [])):
            if self.phase != "keys":
                log.warning(
                    "bank %s: round %d started over (a phase stalled); sending fresh keys", self.bank, self.round
                )
            self._send_keys()
            return False
        if self.phase == "keys":  # the key phase ended without this bank
            raise SecureRoundRefused(f"round {self.round} fixed its members without this bank; take part in the next")
        if self.phase == "keys sent" and status in AFTER_KEYS:
            if self.bank not in state.get("members", []):
                raise SecureRoundRefused(
                    f"round {self.round} fixed its members without this bank; take part in the next"
                )
            self._send_shares()
        elif self.phase == "shares sent" and status in (RoundStatus.MASKING, RoundStatus.UNMASKING):
            if self.bank not in state.get("shared", []) or status == RoundStatus.UNMASKING:
                self.outcome = "left out: the round went on without this bank's shares or masked vector"
                return True
            self._send_masked()
        elif self.phase == "masked sent" and status == RoundStatus.UNMASKING:
            self._send_unmask(state)
        return False

    # ---- phase 1 ----------------------------------------------------------------------------------------
    def _send_keys(self) -> None:
        self.c_sk, self.s_sk, self.seed = secagg.new_private_key(), secagg.new_private_key(), secagg.new_private_key()
        doc = {
            "c_pk": b64(secagg.public_key(self.c_sk)),
            "s_pk": b64(secagg.public_key(self.s_sk)),
            "model_sha256": self.model_sha256,
            "clip_bound": self.clip_bound,
            "noise_multiplier": self.noise_multiplier,
        }
        message = secure_round.advert_message(self.experiment, self.round, self.bank, **doc)  # type: ignore[arg-type]
        doc["signature"] = b64(sign(self.identity_key, message))
        self.transport.post_signed(f"{self.path}/keys", json.dumps(doc).encode())
        self.phase = "keys sent"

    # ---- phase 2 ----------------------------------------------------------------------------------------
    def _check_keys(self, doc: dict[str, Any]) -> None:
        members = [str(m) for m in doc.get("members", [])]
        if self.bank not in members or len(set(members)) != len(members):
            raise SecureRoundRefused(f"the server's member list of round {self.round} does not hold this bank once")
        t = doc.get("threshold")
        if t != secure_round.threshold(len(members)):
            raise SecureRoundRefused(
                f"the server asks for a threshold of {t} among {len(members)} banks; the protocol's is "
                f"{secure_round.threshold(len(members))} (a lower one would let it unmask one bank)"
            )
        if len(members) < 3:
            raise SecureRoundRefused(f"round {self.round} has {len(members)} members; a secure sum needs at least 3")
        for member in members:
            advert = doc["keys"][member]
            message = secure_round.advert_message(
                self.experiment,
                self.round,
                member,
                c_pk=advert["c_pk"],
                s_pk=advert["s_pk"],
                model_sha256=advert["model_sha256"],
                clip_bound=advert["clip_bound"],
                noise_multiplier=advert["noise_multiplier"],
            )
            self.roster.check_bank(member, message, unb64(advert["signature"], what="a signature", size=64))
            if advert["model_sha256"] != self.model_sha256:
                raise SecureRoundRefused(
                    f"bank {member} was served another model than this bank in round {self.round}: the server "
                    "serves banks different models; refused"
                )
            if (advert["clip_bound"], advert["noise_multiplier"]) != (self.clip_bound, self.noise_multiplier):
                raise SecureRoundRefused(f"bank {member} declares another clip bound or noise than this bank's round")
        self.members, self.threshold = members, int(t)
        self.peers = {m: doc["keys"][m] for m in members}

    def _send_shares(self) -> None:
        self._check_keys(self.transport.get_json(f"{self.path}/members"))
        holders, t = len(self.members), self.threshold
        b_shares = secagg.split(self.seed, holders=holders, threshold=t)
        s_shares = secagg.split(self.s_sk, holders=holders, threshold=t)
        sealed, commitments = {}, {}
        for i, holder in enumerate(self.members):
            b, s = b_shares[i], s_shares[i]
            commitments[holder] = {
                "b": secure_round.commitment(self.experiment, self.round, self.bank, "b", b),
                "s": secure_round.commitment(self.experiment, self.round, self.bank, "s", s),
            }
            if holder == self.bank:
                self.received[self.bank] = {"b": b, "s": s}
                continue
            key = secure_round.share_key(
                self.c_sk,
                unb64(self.peers[holder]["c_pk"], what="c_pk", size=32),
                self.experiment,
                self.round,
                self.bank,
                holder,
            )
            plain = json.dumps({"b": secagg.share_to_text(b), "s": secagg.share_to_text(s)}).encode()
            aad = secure_round.share_aad(self.experiment, self.round, self.bank, holder)
            sealed[holder] = b64(secagg.seal(key, plain, aad=aad))
        body = json.dumps({"sealed": sealed, "commitments": commitments}).encode()
        self.transport.post_signed(f"{self.path}/shares", body)
        self.phase = "shares sent"

    # ---- phase 3 ----------------------------------------------------------------------------------------
    def _send_masked(self) -> None:
        doc = self.transport.get_json(f"{self.path}/shares/{self.bank}")
        shared = [str(b) for b in doc["shared"]]
        if not set(shared) <= set(self.members) or len(shared) < self.threshold:
            raise SecureRoundRefused(
                f"the server says {len(shared)} banks shared in round {self.round}, below the threshold "
                f"{self.threshold} or outside the members: refused"
            )
        x = self.members.index(self.bank) + 1
        for owner in shared:
            if owner == self.bank:
                continue
            key = secure_round.share_key(
                self.c_sk,
                unb64(self.peers[owner]["c_pk"], what="c_pk", size=32),
                self.experiment,
                self.round,
                owner,
                self.bank,
            )
            aad = secure_round.share_aad(self.experiment, self.round, owner, self.bank)
            plain = json.loads(secagg.unseal(key, unb64(doc["sealed"][owner], what="a sealed share"), aad=aad))
            shares = {k: secagg.share_from_text(plain[k]) for k in ("b", "s")}
            for kind, share in shares.items():
                expected = secure_round.commitment(self.experiment, self.round, owner, kind, share)
                if share[0] != x or doc["commitments"][owner][kind] != expected:
                    raise SecureRoundRefused(
                        f"bank {owner}'s {kind} share does not match the commitment relayed for it"
                    )
            self.received[owner] = shares
        fraction = secure_round.fraction_bits(self.kind)
        peers = {m: unb64(self.peers[m]["s_pk"], what="s_pk", size=32) for m in shared}
        masked = secure_round.masked_vector(
            secagg.encode(self.vector, fraction),
            me=self.bank,
            seed=self.seed,
            s_sk=self.s_sk,
            peers=peers,
            experiment=self.experiment,
            n=self.round,
        )
        if self.on_masked is not None:
            self.on_masked()
        self.transport.post_signed(f"{self.path}/masked", masked.astype("<u8").tobytes())
        self.shared = shared
        self.phase = "masked sent"

    # ---- phase 4 ----------------------------------------------------------------------------------------
    def _send_unmask(self, state: dict[str, Any]) -> None:
        summed = [str(b) for b in state.get("masked", [])]
        dropped = sorted(set(self.shared) - set(summed))
        if not set(summed) <= set(self.shared) or self.bank not in summed:
            raise SecureRoundRefused(f"the server's list of summed banks in round {self.round} is not consistent")
        if len(summed) < self.threshold:
            raise SecureRoundRefused(
                f"the server would unmask a sum of {len(summed)} banks, below the threshold {self.threshold}: a sum "
                "that small could expose one bank; refused"
            )
        doc = {
            "round": self.round,
            "b": {o: secagg.share_to_text(self.received[o]["b"]) for o in summed},
            "s": {o: secagg.share_to_text(self.received[o]["s"]) for o in dropped},
        }
        self.transport.post_signed(f"{self.path}/unmask", json.dumps(doc).encode())
        self.phase = "unmask sent"


def check_served_signature(meta: dict[str, Any], roster: Roster, digest: str) -> None:
    """The served model's digest is what this bank computed and the server's pinned key signed it."""
    if meta.get("model_sha256") != digest:
        raise ParametersError("the served model's digest does not match its arrays and metadata")
    signature = unb64(meta.get("signature"), what="the served model's signature", size=64)
    roster.check_server(secure_round.model_message(str(meta["experiment"]), int(meta["round"]), digest), signature)
