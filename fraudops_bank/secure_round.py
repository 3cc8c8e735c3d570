"""One secure round's messages and mask arithmetic, the same code on the banks' side and on the server's.

A secure round runs four phases (SecAgg, Bonawitz et al. 2017, with the members fixed when the key
phase fills):

1. **keys**: each bank advertises two fresh X25519 public keys (``c`` to seal shares, ``s`` to agree
   masks), the digest of the global model it was served and the clip bound and noise it will use,
   all signed with its Ed25519 identity key (``fraudops_bank.roster``).
2. **shares**: each bank splits its self-mask seed ``b`` and its ``s`` private key into Shamir shares,
   one per member, seals each for its holder (AES-GCM under a key agreed from the ``c`` keys) and
   publishes a hash commitment of each share, so a share sent back later can be checked alone.
3. **masked**: each bank sends its encoded vector plus the mask of ``b`` plus, for every other member
   ``v``, plus or minus the mask agreed with ``v`` (plus when the bank's id sorts first): the pairwise
   masks cancel in the sum, the self masks do not.
4. **unmask**: each bank still there sends, for every bank whose masked vector arrived, its share of
   ``b``; for every bank that shared but sent no masked vector, its share of ``s``. Never both for one
   bank, which is what keeps one bank's vector hidden: with a threshold above half the members the
   server cannot collect a threshold of both kinds for the same bank.

The server then rebuilds the ``b`` of every bank summed and the ``s`` of every bank that dropped out,
removes their masks and decodes the sum; it never holds what one bank sent without its masks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

import numpy as np

from fraudops_bank import secagg

STATISTICS_FRACTION_BITS = 16  # round 0's sums are larger numbers than a model step
COUNT_UNIT = 1e6  # a model round's example count travels in millions, inside the encodable range
STATISTICS_UNIT = 1e3  # round 0's sums and sums of squares travel in thousands (its count as it is)


def threshold(members: int) -> int:
    """Shares needed to rebuild a secret: more than half the members, so no two disjoint sets both reach it."""
    return members // 2 + 1


def fraction_bits(kind: str) -> int:
    return STATISTICS_FRACTION_BITS if kind == "statistics" else secagg.FRACTION_BITS


def _canonical(doc: Mapping[str, object]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def advert_message(
    experiment: str,
    n: int,
    bank: str,
    *,
    c_pk: str,
    s_pk: str,
    model_sha256: str,
    clip_bound: float | None,
    noise_multiplier: float | None,
) -> bytes:
    """What a bank signs when it advertises its keys: bound to the experiment, the round and the model it got."""
    return _canonical(
        {
            "purpose": "fraudops secagg keys",
            "experiment": experiment,
            "round": n,
            "bank": bank,
            "c_pk": c_pk,
            "s_pk": s_pk,
            "model_sha256": model_sha256,
            "clip_bound": clip_bound,
            "noise_multiplier": noise_multiplier,
        }
    )


def model_message(experiment: str, n: int, model_sha256: str) -> bytes:
    """What the server signs for the model it serves round ``n``."""
    return _canonical(
        {"purpose": "fraudops global model", "experiment": experiment, "round": n, "model_sha256": model_sha256}
    )


def model_digest(arrays: Mapping[str, np.ndarray], meta: Mapping[str, object]) -> str:
    """The digest of what a bank was served: every array (name, shape, float32 bytes) and the metadata."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name], dtype="<f4")
        h.update(_canonical({"name": name, "shape": list(a.shape)}))
        h.update(a.tobytes())
    h.update(_canonical({k: v for k, v in meta.items() if k not in ("model_sha256", "signature")}))
    return h.hexdigest()


def share_aad(experiment: str, n: int, owner: str, holder: str) -> bytes:
    return f"fraudops secagg share|{experiment}|{n}|{owner}|{holder}".encode()


def share_key(c_sk: bytes, peer_c_pk: bytes, experiment: str, n: int, a: str, b: str) -> bytes:
    low, high = sorted((a, b))
    return secagg.agree(c_sk, peer_c_pk, info=f"fraudops secagg seal|{experiment}|{n}|{low}|{high}".encode())


def pair_seed(s_sk: bytes, peer_s_pk: bytes, experiment: str, n: int, a: str, b: str) -> bytes:
    low, high = sorted((a, b))
    return secagg.agree(s_sk, peer_s_pk, info=f"fraudops secagg mask|{experiment}|{n}|{low}|{high}".encode())


def commitment(experiment: str, n: int, owner: str, kind: str, share: secagg.Share) -> str:
    """The hash a dealer publishes for one share, so the server can check that share alone when it comes back."""
    text = f"fraudops secagg commit|{experiment}|{n}|{owner}|{kind}|{secagg.share_to_text(share)}"
    return hashlib.sha256(text.encode()).hexdigest()


def self_mask(seed: bytes, length: int) -> np.ndarray:
    return secagg.mask(seed, length)


def pairwise_masks(
    me: str, s_sk: bytes, peers: Mapping[str, bytes], experiment: str, n: int, length: int
) -> np.ndarray:
    """The sum of ``me``'s signed pairwise masks with ``peers`` (bank -> ``s`` public key), in the ring."""
    total = np.zeros(length, np.uint64)
    for peer in sorted(peers):
        if peer == me:
            continue
        m = secagg.mask(pair_seed(s_sk, peers[peer], experiment, n, me, peer), length)
        if me < peer:
            total += m
        else:
            total -= m
    return total


def masked_vector(
    encoded: np.ndarray, *, me: str, seed: bytes, s_sk: bytes, peers: Mapping[str, bytes], experiment: str, n: int
) -> np.ndarray:
    """What a bank sends in the masked phase: its encoded vector under its self mask and its pairwise masks."""
    length = encoded.size
    return np.asarray(encoded + self_mask(seed, length) + pairwise_masks(me, s_sk, peers, experiment, n, length))


def unmasked_sum(
    masked: Mapping[str, np.ndarray],
    *,
    seeds: Mapping[str, bytes],
    dropped: Mapping[str, bytes],
    s_pks: Mapping[str, bytes],
    experiment: str,
    n: int,
) -> np.ndarray:
    """The sum of the encoded vectors of the banks in ``masked``, with every mask removed.

    ``seeds``: the rebuilt self-mask seed of each bank in ``masked``; ``dropped``: the rebuilt ``s``
    private key of each bank that shared but whose masked vector never came; ``s_pks``: every
    member's ``s`` public key.
    """
    length = next(iter(masked.values())).size
    total = np.zeros(length, np.uint64)
    for vector in masked.values():
        total += vector
    for bank in masked:
        total -= self_mask(seeds[bank], length)
    for gone, s_sk in dropped.items():
        # each survivor added +mask(u, gone) when u < gone and -mask otherwise: take exactly that away
        for survivor in masked:
            m = secagg.mask(pair_seed(s_sk, s_pks[survivor], experiment, n, gone, survivor), length)
            if survivor < gone:
                total -= m
            else:
                total += m
    return total
