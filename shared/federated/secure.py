"""A secure round's phases on the server: keys, sealed shares, masked vectors, unmasking shares.

The round is the same stored ``RoundState`` as a visible one, moved by the same conditional writes
(``shared.federated.rounds``): each bank's message is stored content-addressed first, then counted by
one ETag-conditional write of the state, so a retry answers as the first attempt did and a different
message from the same bank is refused. A phase moves on when every bank expected in it has answered,
or when its deadline has passed and at least the threshold has (the silent banks are dropouts); a
phase that cannot reach the threshold ends the round with the model unchanged (``abandoned``).

What the server holds is what the protocol lets it hold (``fraudops_bank.secure_round``): public
keys, sealed shares it cannot open, hash commitments, masked vectors, and, after the masked phase,
self-mask shares of banks that were summed or key shares of banks that dropped out, never both for
one bank. The sum is computed in ``shared.federated.secure_close``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from fraudops_bank import secure_round
from fraudops_bank.roster import unb64
from shared.domain import layout
from shared.domain.documents.federated import Advert, RoundState, RoundStatus
from shared.domain.errors import ConcurrentUpdateError, RetryLaterError
from shared.federated.params import BadParametersError
from shared.federated.repository import MAX_ATTEMPTS, RoundRepository
from shared.federated.transitions import RoundStateError

log = logging.getLogger(__name__)

HEX64 = re.compile(r"[0-9a-f]{64}")
SHARE = re.compile(r"[0-9]{1,4}:[0-9a-f]{1,131}")
MAX_MESSAGE_BYTES = 2_000_000


def vector_length(kind: str, n_params: int) -> int:
    """Coordinates in a round's secure vector: statistics (count, sums, squares) or a step plus its extras."""
    if kind == "statistics":
        return 1 + 2 * ((n_params - 1) // 2)
    return n_params + len(EXTRAS)


# summed after a model round's step (fraudops_bank.secure.model_vector): examples, the served and the local
# model's loss times examples, whether the step was clipped, the held-out rows, and on them the served model's
# and the bank's own-data model's loss times their count
EXTRAS = (
    "examples",
    "served_loss",
    "local_loss",
    "clipped",
    "holdout_examples",
    "served_holdout_loss",
    "alone_holdout_loss",
)


# ---- the phases, as pure functions of the state -----------------------------------------------------
def moved_on(state: RoundState, now: float, phase_seconds: float) -> RoundState | None:
    """The state in its next phase when the current one is complete (or late with enough answers), else None."""
    t = state.threshold or 0
    late = state.phase_deadline is not None and now >= state.phase_deadline
    deadline = now + phase_seconds
    if state.status == RoundStatus.OPEN and len(state.adverts) >= state.min_clients:
        members = sorted(state.adverts)
        return state.evolve(
            status=RoundStatus.SHARING,
            members=members,
            threshold=secure_round.threshold(len(members)),
            phase_deadline=deadline,
        )
    sharing_done = set(state.members) <= set(state.shared) or (late and len(state.shared) >= t)
    if state.status == RoundStatus.SHARING and sharing_done:
        return state.evolve(status=RoundStatus.MASKING, phase_deadline=deadline)
    masking_done = set(state.shared) <= set(state.masked) or (late and len(state.masked) >= t)
    if state.status == RoundStatus.MASKING and masking_done:
        return state.evolve(status=RoundStatus.UNMASKING, phase_deadline=deadline)
    return None


def stalled(state: RoundState, now: float) -> str | None:
    """Why a secure phase can never complete (its deadline passed below the threshold), else None."""
    if state.phase_deadline is None or now < state.phase_deadline:
        return None
    t = state.threshold or 0
    counts = {
        RoundStatus.SHARING: state.shared,
        RoundStatus.MASKING: state.masked,
        RoundStatus.UNMASKING: state.unmasked,
    }
    got = counts.get(state.status)
    if got is not None and len(got) < t:
        return (
            f"the {state.status} phase ended with {len(got)} of the {t} banks a secure sum needs; the round "
            "ends with the model unchanged"
        )
    return None


def ready_to_close(state: RoundState, now: float) -> bool:
    """Unmasking is done: every summed bank answered, or the deadline passed with the threshold in."""
    if state.status != RoundStatus.UNMASKING:
        return False
    late = state.phase_deadline is not None and now >= state.phase_deadline
    return set(state.masked) <= set(state.unmasked) or (late and len(state.unmasked) >= (state.threshold or 0))


def why_not_yet(state: RoundState, now: float) -> str:
    waiting: dict[RoundStatus, tuple[dict[str, Any] | list[str], int, str]] = {
        RoundStatus.OPEN: (state.adverts, state.min_clients, "banks have sent their keys"),
        RoundStatus.SHARING: (state.shared, len(state.members), "members have sent their sealed shares"),
        RoundStatus.MASKING: (state.masked, len(state.shared), "banks have sent their masked vectors"),
        RoundStatus.UNMASKING: (state.unmasked, len(state.masked), "banks have sent their unmasking shares"),
    }
    got, need, what = waiting.get(state.status, ([], 0, "banks have answered"))
    late = state.phase_deadline is not None and now >= state.phase_deadline
    return f"{len(got)} of {need} {what}" + ("; the phase's deadline has passed" if late else "")


# ---- checking what a bank sends -------------------------------------------------------------------
def _json(body: bytes, what: str) -> dict[str, Any]:
    if len(body) > MAX_MESSAGE_BYTES:
        raise BadParametersError(f"{what} is {len(body)} bytes; at most {MAX_MESSAGE_BYTES}")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadParametersError(f"{what} is not JSON") from None
    if not isinstance(doc, dict):
        raise BadParametersError(f"{what} must be a JSON object")
    return doc


def parse_advert(body: bytes, state: RoundState, now: float) -> Advert:
    """A bank's keys, checked for form and against the round: its clip bound and noise must be the round's."""
    doc = _json(body, "the keys message")
    for name in ("c_pk", "s_pk"):
        unb64(doc.get(name), what=name, size=32)
    unb64(doc.get("signature"), what="signature", size=64)
    if not isinstance(doc.get("model_sha256"), str) or not HEX64.fullmatch(doc["model_sha256"]):
        raise BadParametersError("model_sha256 must be 64 lower-case hex digits")
    for name in ("clip_bound", "noise_multiplier"):
        if doc.get(name) != getattr(state, name):
            raise BadParametersError(
                f"the bank declares {name}={doc.get(name)!r} but round {state.round} runs with "
                f"{getattr(state, name)!r}: every bank clips and noises alike, or the sum's bound does not hold"
            )
    return Advert(
        c_pk=doc["c_pk"],
        s_pk=doc["s_pk"],
        model_sha256=doc["model_sha256"],
        clip_bound=state.clip_bound,
        noise_multiplier=state.noise_multiplier,
        signature=doc["signature"],
        received_at=now,
    )


def check_shares(body: bytes, state: RoundState, bank: str) -> None:
    """A dealer's sealed shares (one per other member) and commitments (one pair per member)."""
    doc = _json(body, "the shares message")
    sealed, commitments = doc.get("sealed"), doc.get("commitments")
    others = set(state.members) - {bank}
    if not isinstance(sealed, dict) or set(sealed) != others:
        raise BadParametersError(f"'sealed' must hold one share for each other member: {sorted(others)}")
    for holder, text in sealed.items():
        unb64(text, what=f"the share sealed for {holder}", limit=1024)
    if not isinstance(commitments, dict) or set(commitments) != set(state.members):
        raise BadParametersError(f"'commitments' must hold one entry for each member: {state.members}")
    for holder, pair in commitments.items():
        if (
            not isinstance(pair, dict)
            or set(pair) != {"b", "s"}
            or not all(isinstance(v, str) and HEX64.fullmatch(v) for v in pair.values())
        ):
            raise BadParametersError(f"the commitments for {holder} must be {{'b': sha256 hex, 's': sha256 hex}}")


class SecurePhases:
    """The secure phases of one experiment's rounds, over the same repository and leases as visible rounds."""

    def __init__(self, repository: RoundRepository, *, phase_seconds: float, clock: Callable[[], float]) -> None:
        self.repository, self.phase_seconds, self.clock = repository, phase_seconds, clock

    @property
    def experiment(self) -> str:
        return self.repository.experiment

    # ---- the commit point, shared by every phase ----------------------------------------------------
    def commit(self, n: int, change: Callable[[RoundState], RoundState | None]) -> RoundState:
        """Apply ``change`` to round ``n``'s state with one conditional write, retried on conflict, then move
        the round on while it can; ``change`` returns ``None`` when there is nothing to write (a retry)."""
        for _ in range(MAX_ATTEMPTS):
            state, etag = self.repository.read(n)
            changed = change(state)
            if changed is None:
                return self.advance(n)
            try:
                self.repository.write(n, changed, etag)
            except ConcurrentUpdateError:
                continue
            return self.advance(n)
        raise RetryLaterError(f"round {n} is too busy ({MAX_ATTEMPTS} conflicting writes in a row): send it again")

    def advance(self, n: int) -> RoundState:
        """Move round ``n`` through every phase that is complete (each step one conditional write)."""
        from shared.federated.transitions import record_transition

        for _ in range(MAX_ATTEMPTS):
            state, etag = self.repository.read(n)
            nxt = moved_on(state, self.clock(), self.phase_seconds)
            if nxt is None:
                return state
            try:
                self.repository.write(n, nxt, etag)
            except ConcurrentUpdateError:
                continue
            record_transition(self.repository.store, self.experiment, n, nxt.status)
        return self.repository.read(n)[0]

    def _name(self, n: int, phase: str, bank: str, data: bytes) -> str:
        return layout.round_phase_blob(self.experiment, n, phase, bank, hashlib.sha256(data).hexdigest())

    def _store(self, n: int, phase: str, bank: str, data: bytes) -> str:
        name = self._name(n, phase, bank, data)
        self.repository.store.put_bytes(layout.FEDERATED, name, data, overwrite=True)
        return name

    @staticmethod
    def _expect(state: RoundState, status: RoundStatus, what: str) -> None:
        if state.mode != "secure":
            raise RoundStateError(f"round {state.round} is not a secure round; send a plain update")
        if state.status != status:
            raise RoundStateError(
                f"round {state.round} is in its {state.status} phase, not taking {what}"
                + ("; take part in the next round" if state.status != RoundStatus.OPEN else "")
            )

    @staticmethod
    def _once(sent: dict[str, str], bank: str, name: str, what: str, n: int) -> bool:
        """True when this very message is already counted (a retry); refused when a different one is."""
        if bank not in sent:
            return False
        if sent[bank] == name:
            return True
        raise RoundStateError(f"bank {bank} already sent its {what} for round {n}; a second, different one is refused")

    # ---- phase 1: keys ------------------------------------------------------------------------------
    def advertise(self, n: int, bank: str, body: bytes, *, served_sha256: str) -> RoundState:
        state = self.repository.read(n)[0]
        self._expect(state, RoundStatus.OPEN, "keys")
        advert = parse_advert(body, state, self.clock())
        if advert.model_sha256 != served_sha256:
            raise RoundStateError(
                f"bank {bank} trained from a model whose digest is {advert.model_sha256[:12]}..., not the "
                f"{served_sha256[:12]}... this round serves: every bank of a round trains from the same model"
            )

        def change(s: RoundState) -> RoundState | None:
            self._expect(s, RoundStatus.OPEN, "keys")
            mine = s.adverts.get(bank)
            if mine is not None:
                if mine.model_dump(exclude={"received_at"}) == advert.model_dump(exclude={"received_at"}):
                    return None
                raise RoundStateError(f"bank {bank} already sent its keys for round {n}")
            return s.evolve(adverts={**s.adverts, bank: advert})

        return self.commit(n, change)

    def keys(self, n: int) -> dict[str, Any]:
        """The members' signed keys, once the key phase is over (before, the membership is not fixed)."""
        state = self.repository.read(n)[0]
        if state.mode != "secure" or state.status == RoundStatus.OPEN or not state.members:
            raise RoundStateError(f"round {n}'s members are not fixed yet ({why_not_yet(state, self.clock())})")
        return {
            "experiment": self.experiment,
            "round": n,
            "threshold": state.threshold,
            "members": state.members,
            "keys": {b: state.adverts[b].model_dump(exclude={"received_at"}) for b in state.members},
        }

    # ---- phase 2: sealed shares ---------------------------------------------------------------------
    def share(self, n: int, bank: str, body: bytes) -> RoundState:
        state = self.repository.read(n)[0]
        if state.shared.get(bank) == self._name(n, "shares", bank, body):
            return state  # a retry of what was counted: the same answer, whatever the phase now
        self._expect(state, RoundStatus.SHARING, "shares")
        if bank not in state.members:
            raise RoundStateError(f"bank {bank} is not a member of round {n}; take part in the next round")
        check_shares(body, state, bank)
        name = self._store(n, "shares", bank, body)

        def change(s: RoundState) -> RoundState | None:
            if self._once(s.shared, bank, name, "shares", n):
                return None
            self._expect(s, RoundStatus.SHARING, "shares")
            return s.evolve(shared={**s.shared, bank: name})

        return self.commit(n, change)

    def shares_for(self, n: int, bank: str) -> dict[str, Any]:
        """The shares sealed for ``bank`` by every bank that shared, and their commitments to it."""
        state = self.repository.read(n)[0]
        if state.mode != "secure" or state.status in (RoundStatus.OPEN, RoundStatus.SHARING):
            raise RoundStateError(f"round {n}'s shares are not all in yet ({why_not_yet(state, self.clock())})")
        if bank not in state.shared:
            raise RoundStateError(f"bank {bank}'s shares were not counted in round {n}; take part in the next round")
        sealed, commitments = {}, {}
        for owner, name in sorted(state.shared.items()):
            doc = json.loads(self.repository.update_bytes(name))
            commitments[owner] = doc["commitments"][bank]
            if owner != bank:
                sealed[owner] = doc["sealed"][bank]
        return {"round": n, "shared": sorted(state.shared), "sealed": sealed, "commitments": commitments}

    # ---- phase 3: masked vectors --------------------------------------------------------------------
    def mask(self, n: int, bank: str, data: bytes, *, length: int) -> RoundState:
        state = self.repository.read(n)[0]
        if state.masked.get(bank) == self._name(n, "masked", bank, data):
            return state  # a retry of what was counted: the same answer, whatever the phase now
        self._expect(state, RoundStatus.MASKING, "masked vectors")
        if bank not in state.shared:
            raise RoundStateError(f"bank {bank}'s shares were not counted in round {n}; take part in the next round")
        if len(data) != 8 * length:
            raise BadParametersError(
                f"a masked vector of round {n} is {length} uint64 ({8 * length} bytes), got {len(data)}"
            )
        name = self._store(n, "masked", bank, data)

        def change(s: RoundState) -> RoundState | None:
            if self._once(s.masked, bank, name, "masked vector", n):
                return None
            self._expect(s, RoundStatus.MASKING, "masked vectors")
            return s.evolve(masked={**s.masked, bank: name})

        return self.commit(n, change)

    # ---- phase 4: unmasking shares ------------------------------------------------------------------
    def unmask(self, n: int, bank: str, body: bytes) -> RoundState:
        state = self.repository.read(n)[0]
        if state.unmasked.get(bank) == self._name(n, "unmask", bank, body):
            return state  # a retry of what was counted: the same answer, whatever the phase now
        self._expect(state, RoundStatus.UNMASKING, "unmasking shares")
        if bank not in state.masked:
            raise RoundStateError(f"bank {bank}'s masked vector was not counted in round {n}")
        self.check_unmask(state, bank, _json(body, "the unmasking message"))
        name = self._store(n, "unmask", bank, body)

        def change(s: RoundState) -> RoundState | None:
            if self._once(s.unmasked, bank, name, "unmasking shares", n):
                return None
            self._expect(s, RoundStatus.UNMASKING, "unmasking shares")
            return s.evolve(unmasked={**s.unmasked, bank: name})

        return self.commit(n, change)

    def check_unmask(self, state: RoundState, bank: str, doc: dict[str, Any]) -> None:
        """Self-mask shares for exactly the summed banks, key shares for exactly the dropped ones, each the
        share its dealer committed to for this bank in this round (a share of another round does not match)."""
        summed, dropped = set(state.masked), set(state.shared) - set(state.masked)
        b, s = doc.get("b"), doc.get("s")
        if doc.get("round") != state.round:
            raise BadParametersError(f"the unmasking message is for round {doc.get('round')!r}, not {state.round}")
        if not isinstance(b, dict) or set(b) != summed:
            raise BadParametersError(f"'b' must hold a self-mask share for each summed bank: {sorted(summed)}")
        if not isinstance(s, dict) or set(s) != dropped:
            raise BadParametersError(f"'s' must hold a key share for each bank that dropped out: {sorted(dropped)}")
        x = state.members.index(bank) + 1
        for kind, shares in (("b", b), ("s", s)):
            for owner, text in shares.items():
                if not isinstance(text, str) or not SHARE.fullmatch(text) or int(text.split(":")[0]) != x:
                    raise BadParametersError(f"the {kind} share of {owner} is not this bank's share 'x:hex'")
                dealt = json.loads(self.repository.update_bytes(state.shared[owner]))["commitments"][bank][kind]
                got = secure_round.commitment(
                    self.experiment, state.round, owner, kind, (x, int(text.split(":")[1], 16))
                )
                if got != dealt:
                    raise BadParametersError(
                        f"bank {bank}'s {kind} share of {owner} is not the one {owner} dealt it in round "
                        f"{state.round} (a share of another round, or altered): refused"
                    )
