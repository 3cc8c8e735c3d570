"""Synthetic card authorisations in the ``card_transactions`` contract's format, with known truth.

The generative model (documented so tests can reason about it):

* 5,000 customers hold one or two cards each; 2,000 terminals each belong to a merchant with one
  merchant category (``mcc``, 300 codes, a few of them much riskier) and one country (``FR`` for most,
  30 others). A row is a card paying at a terminal; its ``country`` is missing for 8 % of rows (the
  acquirer did not send it), and such rows are riskier: missingness carries signal.
* ``channel`` is pos, ecom, atm or moto; ``card_present`` is mostly true at pos and atm, false
  online; a pos payment without the card (keyed or fallback) is much riskier.
* ``amount`` is log-normal; risk rises smoothly with it, faster online, and tiny amounts (under 2 EUR,
  fraudsters testing a card) are risky too. Online and in person are two pictures: a merchant
  category's and a foreign country's risk show online; in person, a payment without the card does.
* The true fraud probability is ``sigmoid(logit)`` of those effects, with the intercept solved so the
  average is ``fraud_rate``; the label is drawn from it, so ``--truth`` gives each row's exact
  probability and the Bayes-optimal scores for the quality bench.

Timestamps are ISO 8601 with the Paris offset (``+02:00`` in summer, ``+01:00`` in winter), rows in time
order. Written in chunks, so memory does not grow with ``rows``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

NAME = "card_transactions"
CHUNK_ROWS = 200_000
START = np.datetime64("2026-10-24T12:00:00", "s")  # UTC; Paris clocks go back 13 h later: both offsets occur
SECONDS_PER_ROW = 12.0
CUSTOMERS, TERMINALS, MCCS, COUNTRIES = 5_000, 2_000, 300, 30
CHANNELS = np.array(["pos", "ecom", "atm", "moto"])
CHANNEL_SHARE = np.array([0.62, 0.30, 0.05, 0.03])
CHANNEL_RISK = np.array([0.0, 1.1, 0.4, 1.6])
COLUMNS = ["tx_id", "ts", "customer_id", "card_id", "terminal_id", "amount", "mcc", "channel", "country"]
COLUMNS += ["card_present", "is_fraud"]


@dataclass(frozen=True)
class World:
    """The fixed part of the picture: merchants, their categories, countries and risks."""

    mcc_codes: np.ndarray  # str, per mcc index
    mcc_risk: np.ndarray
    mcc_share: np.ndarray
    countries: np.ndarray  # str, per country index; 0 is the home country
    country_risk: np.ndarray
    terminal_mcc: np.ndarray  # mcc index per terminal
    terminal_country: np.ndarray  # country index per terminal
    terminal_share: np.ndarray
    cards_of: np.ndarray  # per card: its customer

    @classmethod
    def draw(cls, rng: np.random.Generator) -> World:
        codes = np.sort(rng.choice(np.arange(1000, 10000), MCCS, replace=False)).astype(str)
        risk = rng.normal(0.0, 0.7, MCCS)
        risk[rng.choice(MCCS, 12, replace=False)] += 4.0  # a few categories fraudsters favour
        share = 1.0 / np.arange(1, MCCS + 1) ** 0.9
        share = rng.permutation(share / share.sum())
        letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
        others = {"FR"}
        while len(others) < COUNTRIES + 1:
            others.add("".join(rng.choice(letters, 2)))
        countries = np.array(["FR", *sorted(others - {"FR"})])
        country_risk = np.concatenate([[0.0], rng.normal(1.2, 0.8, COUNTRIES)])
        terminal_country = np.where(rng.random(TERMINALS) < 0.8, 0, rng.integers(1, COUNTRIES + 1, TERMINALS))
        terminal_share = rng.pareto(1.5, TERMINALS) + 1.0
        cards = np.concatenate([np.arange(CUSTOMERS), rng.choice(CUSTOMERS, CUSTOMERS // 3, replace=False)])
        return cls(
            mcc_codes=codes,
            mcc_risk=risk,
            mcc_share=share,
            countries=countries,
            country_risk=country_risk,
            terminal_mcc=rng.choice(MCCS, TERMINALS, p=share),
            terminal_country=terminal_country,
            terminal_share=terminal_share / terminal_share.sum(),
            cards_of=cards,
        )


@dataclass(frozen=True)
class Rows:
    """One chunk of rows as indices and numbers (``logit`` without the intercept)."""

    card: np.ndarray
    terminal: np.ndarray
    channel: np.ndarray
    present: np.ndarray
    country_missing: np.ndarray
    amount: np.ndarray
    logit: np.ndarray


def _rows(world: World, rng: np.random.Generator, n: int) -> Rows:
    card = rng.integers(0, len(world.cards_of), n)
    terminal = rng.choice(TERMINALS, n, p=world.terminal_share)
    channel = rng.choice(len(CHANNELS), n, p=CHANNEL_SHARE)
    present = np.where(channel == 0, rng.random(n) < 0.93, np.where(channel == 2, True, rng.random(n) < 0.02))
    missing = rng.random(n) < 0.08
    amount = np.round(np.exp(rng.normal(3.4, 1.1, n)), 2)
    size = 1.0 / (1.0 + np.exp(-(np.log(amount) - np.log(250.0)) * 1.5))
    online = (channel == 1) | (channel == 3)
    country = world.country_risk[world.terminal_country[terminal]]
    logit = (  # online and in person are two different pictures: each effect shows in one of them
        np.where(
            online,
            world.mcc_risk[world.terminal_mcc[terminal]] + country + size * 4.0,
            np.where((channel == 0) & ~present, 3.5, 0.0) + 0.3 * country + size * 1.5,
        )
        + CHANNEL_RISK[channel]
        + np.where(missing, 2.5, 0.0)
        + np.where(amount < 2.0, 2.5, 0.0)  # card testing: tiny amounts first
    )
    return Rows(card, terminal, channel, present, missing, amount, logit)


def intercept(world: World, fraud_rate: float, seed: int) -> float:
    """The intercept that makes the average true probability ``fraud_rate`` (on a large draw)."""
    logit = _rows(world, np.random.default_rng([seed, 1]), 200_000).logit
    lo, hi = -30.0, 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(np.mean(1 / (1 + np.exp(-(logit + mid))))) < fraud_rate else (lo, mid)
    return (lo + hi) / 2


def _timestamps(seconds: np.ndarray) -> np.ndarray:
    """ISO 8601 local times in Paris with their offset, from seconds after ``START`` (UTC)."""
    import pandas as pd

    utc = START + seconds.astype("timedelta64[s]")
    local = pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert("Europe/Paris")
    offset_min = np.asarray((local.tz_localize(None) - pd.DatetimeIndex(utc)).total_seconds() // 60, dtype=np.int64)
    sign = np.where(offset_min >= 0, "+", "-")
    hours, minutes = np.abs(offset_min) // 60, np.abs(offset_min) % 60
    hh, mm = np.char.zfill(hours.astype("U2"), 2), np.char.zfill(minutes.astype("U2"), 2)
    off = np.char.add(np.char.add(sign, hh), np.char.add(":", mm))
    text = np.datetime_as_string(local.tz_localize(None).to_numpy().astype("datetime64[s]"), unit="s")
    return np.char.add(text, off)


@dataclass(frozen=True)
class CardSummary:
    rows: int
    frauds: int
    path: str
    truth: str | None
    bytes: int
    mechanics: str = "card_transactions"


def generate(
    rows: int, seed: int, out: str | Path, *, fraud_rate: float = 0.005, truth: str | Path | None = None
) -> CardSummary:
    """Write ``rows`` authorisations to ``out`` (CSV); optionally each row's true fraud probability."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 < fraud_rate < 0.5:
        raise ValueError("fraud rate must be between 0 and 0.5")
    rng = np.random.default_rng(seed)
    world = World.draw(np.random.default_rng([seed, 0]))
    a0 = intercept(world, fraud_rate, seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frauds, clock = 0, 0.0
    truth_file = open(truth, "w", encoding="utf-8") if truth else None  # noqa: SIM115
    try:
        if truth_file:
            truth_file.write("fraud_probability\n")
        with out.open("wb") as f:
            for start in range(0, rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, rows - start)
                r = _rows(world, rng, n)
                p = 1.0 / (1.0 + np.exp(-(r.logit + a0)))
                y = (rng.random(n) < p).astype(np.int8)
                seconds = clock + np.cumsum(rng.exponential(SECONDS_PER_ROW, n))
                clock = float(seconds[-1])
                frauds += int(y.sum())
                country = world.countries[world.terminal_country[r.terminal]].astype(object)
                country[r.country_missing] = None
                table = pa.table(
                    {
                        "tx_id": pa.array(np.char.add("tx-", (start + np.arange(n)).astype(str))),
                        "ts": pa.array(_timestamps(seconds)),
                        "customer_id": pa.array(np.char.add("C", np.char.zfill(world.cards_of[r.card].astype(str), 6))),
                        "card_id": pa.array(np.char.add("K", np.char.zfill(r.card.astype(str), 7))),
                        "terminal_id": pa.array(np.char.add("T", np.char.zfill(r.terminal.astype(str), 5))),
                        "amount": pa.array(r.amount),
                        "mcc": pa.array(world.mcc_codes[world.terminal_mcc[r.terminal]]),
                        "channel": pa.array(CHANNELS[r.channel]),
                        "country": pa.array(country, type=pa.string()),
                        "card_present": pa.array(r.present),
                        "is_fraud": pa.array(y),
                    }
                )
                pacsv.write_csv(table, f, pacsv.WriteOptions(include_header=start == 0, quoting_style="needed"))
                if truth_file:
                    truth_file.write("\n".join(f"{x:.9g}" for x in p) + "\n")
    finally:
        if truth_file:
            truth_file.close()
    log.info("generated %d %s rows (%d frauds) to %s", rows, NAME, frauds, out)
    return CardSummary(rows, frauds, str(out), str(truth) if truth else None, out.stat().st_size)
