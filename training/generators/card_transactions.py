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

With ``mechanisms`` (``--mechanisms terminal,card,testing,takeover``), frauds that only history reveals are laid
over the rows, each with known truth (the truth file then names each row's ``mechanism``), as published card
fraud simulators draw them: each card also gets a spending level of its own, and its amounts stay near it (a
card's amounts spread about half their level, ``WITHIN_CARD``, as in the published simulators where a
customer's amounts have a standard deviation of half their mean; the levels spread so that all amounts together
keep the base picture's spread), and

* ``terminal``, compromised terminals: every day a few terminals (``TERMINALS_PER_DAY``) are compromised for
  ``TERMINAL_DAYS`` days, and every payment there in that time is a fraud;
* ``card``, compromised cards: every day a few cards are compromised for ``CARD_DAYS`` days, and a third of
  their payments then are frauds of five times their usual amount;
* ``testing``, card-testing bursts: a card pays tiny amounts (under 2 EUR) online at terminals it never used,
  several in a few minutes, then a large amount: all frauds (rows added to the file);
* ``takeover``, account takeover: from some moment a card pays at terminals abroad for ``TAKEOVER_DAYS`` days:
  all frauds.

A mechanism row's true probability is 1; the others keep the base picture's.

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
AMOUNT_LOG_MEAN = 3.4  # amounts are log-normal around exp(3.4), about 30 EUR
CUSTOMERS, TERMINALS, MCCS, COUNTRIES = 5_000, 2_000, 300, 30
CHANNELS = np.array(["pos", "ecom", "atm", "moto"])
CHANNEL_SHARE = np.array([0.62, 0.30, 0.05, 0.03])
CHANNEL_RISK = np.array([0.0, 1.1, 0.4, 1.6])
MECHANISMS = ("terminal", "card", "testing", "takeover")
# A generic behaviour section for this format (per card and per terminal), the same for every mechanism: what
# the tests and the quality benchmark append to the shipped contract under the name ``card_behaviour``. Its
# windows are the published feature set for this kind of data (Le Borgne et al., the card fraud handbook: the
# customer's count and mean amount over 1, 7 and 30 days, the terminal's count and known-fraud share over the
# same), with an hour for bursts, the card's distinct terminals, the gap since its previous payment and the
# amount against its means; not chosen per mechanism
BEHAVIOUR_SECTION = """
behaviour:
  windows:
    - {entity: card, of: amount, over: [1h, 1d, 7d, 30d], stats: [count, mean, max, std]}
    - {entity: terminal, over: [1d, 7d, 30d]}
  distinct:
    - {entity: card, of: terminal_id, over: [1d]}
  since_previous: [card]
  amount_vs_mean:
    - {entity: card, over: 7d}
    - {entity: card, over: 30d}
  fraud_share:
    - {entity: terminal, over: [1d, 7d, 30d]}
  calendar: [hour, night]
  label_delay: 1d
  lateness: 10m
"""


def with_behaviour(contract_text: str, section: str = BEHAVIOUR_SECTION) -> str:
    """The ``card_transactions`` contract's text as ``card_behaviour``: the same columns, and ``section`` (by
    default ``BEHAVIOUR_SECTION``)."""
    return contract_text.replace("name: card_transactions", "name: card_behaviour", 1).rstrip() + "\n" + section


WITHIN_CARD, CARD_LEVELS = 0.45, 1.0  # with mechanisms: a card's own spread (share of the base's), its level's
TERMINALS_PER_DAY, TERMINAL_DAYS = 2, 7
CARDS_PER_DAY, CARD_DAYS = 4, 14
BURSTS_PER_DAY = 3
TAKEOVERS_PER_DAY, TAKEOVER_DAYS = 3, 2
DAY_SECONDS = 86400.0
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
    amount = np.round(np.exp(rng.normal(AMOUNT_LOG_MEAN, 1.1, n)), 2)
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
class Schedule:
    """When and where each mechanism strikes: windows ``(entity, start, end)`` in seconds after ``START``, and
    the card-testing bursts' rows (added to the file)."""

    terminals: np.ndarray  # [k, 3]: terminal, start, end
    cards: np.ndarray  # [k, 3]: card, start, end
    takeovers: np.ndarray  # [k, 3]: card, start, end
    bursts: dict[str, np.ndarray]  # time, card, terminal, amount: every burst row, in time order
    card_level: np.ndarray  # per card: its spending level

    @classmethod
    def draw(cls, world: World, rng: np.random.Generator, span: float, wanted: tuple[str, ...]) -> Schedule:
        days = max(1, int(np.ceil(span / DAY_SECONDS)))
        n_cards = len(world.cards_of)

        def windows(on: bool, per_day: int, population: int, length: float, p: np.ndarray | None = None) -> np.ndarray:
            if not on:
                return np.empty((0, 3))
            k = per_day * days
            who = rng.choice(population, k, p=p)
            start = rng.uniform(0.0, span, k)
            return np.column_stack([who, start, start + length])

        terminals = windows("terminal" in wanted, TERMINALS_PER_DAY, TERMINALS, TERMINAL_DAYS * DAY_SECONDS)
        cards = windows("card" in wanted, CARDS_PER_DAY, n_cards, CARD_DAYS * DAY_SECONDS)
        takeovers = windows("takeover" in wanted, TAKEOVERS_PER_DAY, n_cards, TAKEOVER_DAYS * DAY_SECONDS)
        bursts: dict[str, list[np.ndarray]] = {"time": [], "card": [], "terminal": [], "amount": []}
        if "testing" in wanted:
            for _ in range(BURSTS_PER_DAY * days):
                k = int(rng.integers(4, 9))  # tiny tests, then the large one
                t = rng.uniform(0.0, span) + np.cumsum(rng.exponential(45.0, k + 1))
                tiny = np.round(rng.uniform(0.5, 2.0, k), 2)
                large = np.round(rng.uniform(300.0, 1500.0, 1), 2)
                bursts["time"].append(t)
                bursts["card"].append(np.full(k + 1, rng.integers(0, n_cards)))
                bursts["terminal"].append(rng.integers(0, TERMINALS, k + 1))
                bursts["amount"].append(np.concatenate([tiny, large]))
        joined = {k: np.concatenate(v) if v else np.empty(0) for k, v in bursts.items()}
        order = np.argsort(joined["time"], kind="stable")
        level = np.exp(rng.normal(0.0, CARD_LEVELS, n_cards)) if wanted else np.ones(n_cards)
        return cls(terminals, cards, takeovers, {k: v[order] for k, v in joined.items()}, level)

    def strike(self, world: World, rng: np.random.Generator, r: Rows, seconds: np.ndarray) -> np.ndarray:
        """Lay the window mechanisms over a chunk's rows (in place); each row's mechanism index (0: none)."""
        which = np.zeros(seconds.size, dtype=np.int8)
        typical = np.exp(AMOUNT_LOG_MEAN)  # the base's median amount: a card's amounts keep their rank around it
        r.amount[:] = np.round(self.card_level[r.card] * typical * (r.amount / typical) ** WITHIN_CARD, 2)
        for card, start, end in self.takeovers:
            hit = (r.card == int(card)) & (seconds >= start) & (seconds < end)
            if hit.any():
                abroad = np.flatnonzero(world.terminal_country != 0)
                r.terminal[hit] = rng.choice(abroad, int(hit.sum()))
                which[hit] = 4
        for card, start, end in self.cards:
            hit = (r.card == int(card)) & (seconds >= start) & (seconds < end) & (rng.random(seconds.size) < 1 / 3)
            r.amount[hit] = np.round(r.amount[hit] * 5.0, 2)
            which[hit] = 2
        for terminal, start, end in self.terminals:
            which[(r.terminal == int(terminal)) & (seconds >= start) & (seconds < end)] = 1
        return which


@dataclass(frozen=True)
class CardSummary:
    rows: int
    frauds: int
    path: str
    truth: str | None
    bytes: int
    mechanics: str = "card_transactions"


def generate(
    rows: int,
    seed: int,
    out: str | Path,
    *,
    fraud_rate: float = 0.005,
    truth: str | Path | None = None,
    mechanisms: tuple[str, ...] | list[str] = (),
) -> CardSummary:
    """Write ``rows`` authorisations to ``out`` (CSV); optionally each row's true fraud probability (and, with
    ``mechanisms``, the behavioural frauds laid over them, each row's mechanism beside its probability). The
    card-testing bursts add their own rows to ``rows``."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if rows < 1:
        raise ValueError("rows must be at least 1")
    if not 0.0 < fraud_rate < 0.5:
        raise ValueError("fraud rate must be between 0 and 0.5")
    unknown = sorted(set(mechanisms) - set(MECHANISMS))
    if unknown:
        raise ValueError(f"unknown mechanism {unknown[0]!r}: choose among {', '.join(MECHANISMS)}")
    wanted = tuple(m for m in MECHANISMS if m in mechanisms)
    rng = np.random.default_rng(seed)
    world = World.draw(np.random.default_rng([seed, 0]))
    a0 = intercept(world, fraud_rate, seed)
    schedule = Schedule.draw(world, np.random.default_rng([seed, 2]), rows * SECONDS_PER_ROW, wanted)
    strike_rng = np.random.default_rng([seed, 3])
    burst_at = 0
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frauds, clock = 0, 0.0
    truth_file = open(truth, "w", encoding="utf-8") if truth else None  # noqa: SIM115
    try:
        if truth_file:
            truth_file.write("fraud_probability,mechanism\n" if wanted else "fraud_probability\n")
        with out.open("wb") as f:
            for start in range(0, rows, CHUNK_ROWS):
                n = min(CHUNK_ROWS, rows - start)
                r = _rows(world, rng, n)
                p = 1.0 / (1.0 + np.exp(-(r.logit + a0)))
                y = (rng.random(n) < p).astype(np.int8)
                seconds = clock + np.cumsum(rng.exponential(SECONDS_PER_ROW, n))
                clock = float(seconds[-1])
                ids = np.char.add("tx-", (start + np.arange(n)).astype(str))
                which = np.zeros(n, dtype=np.int8)
                if wanted:
                    which = schedule.strike(world, strike_rng, r, seconds)
                    r, seconds, ids, y, p, which, burst_at = _with_bursts(
                        schedule, r, seconds, ids, y, p, which, burst_at, last=start + n >= rows
                    )
                    n = seconds.size
                    y[which > 0], p[which > 0] = 1, 1.0
                frauds += int(y.sum())
                country = world.countries[world.terminal_country[r.terminal]].astype(object)
                country[r.country_missing] = None
                table = pa.table(
                    {
                        "tx_id": pa.array(ids),
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
                if truth_file and wanted:
                    names = np.array(["none", *MECHANISMS])[which]
                    truth_file.write("\n".join(f"{x:.9g},{m}" for x, m in zip(p, names, strict=True)) + "\n")
                elif truth_file:
                    truth_file.write("\n".join(f"{x:.9g}" for x in p) + "\n")
    finally:
        if truth_file:
            truth_file.close()
    written = rows + (burst_at if wanted else 0)
    log.info("generated %d %s rows (%d frauds) to %s", written, NAME, frauds, out)
    mechanics = NAME + (f" with {', '.join(wanted)}" if wanted else "")
    return CardSummary(written, frauds, str(out), str(truth) if truth else None, out.stat().st_size, mechanics)


def _with_bursts(
    schedule: Schedule,
    r: Rows,
    seconds: np.ndarray,
    ids: np.ndarray,
    y: np.ndarray,
    p: np.ndarray,
    which: np.ndarray,
    at: int,
    *,
    last: bool,
) -> tuple[Rows, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The chunk with the card-testing rows that fall in its time (all that remain, for the last chunk), merged
    in time order; where the next chunk's bursts begin."""
    b = schedule.bursts
    stop = b["time"].size if last else int(np.searchsorted(b["time"], seconds[-1], side="right"))
    if stop <= at:
        return r, seconds, ids, y, p, which, at
    k = stop - at
    terminal = b["terminal"][at:stop].astype(np.int64)
    extra = Rows(
        card=b["card"][at:stop].astype(np.int64),
        terminal=terminal,
        channel=np.full(k, 1),  # online
        present=np.zeros(k, dtype=bool),
        country_missing=np.zeros(k, dtype=bool),
        amount=b["amount"][at:stop].copy(),
        logit=np.zeros(k),
    )
    merged = Rows(*(np.concatenate([getattr(r, f), getattr(extra, f)]) for f in Rows.__dataclass_fields__))
    times = np.concatenate([seconds, b["time"][at:stop]])
    order = np.argsort(times, kind="stable")
    merged = Rows(*(getattr(merged, f)[order] for f in Rows.__dataclass_fields__))
    new_ids = np.concatenate([ids, np.char.add("tx-b", np.arange(at, stop).astype(str))])[order]
    y = np.concatenate([y, np.ones(k, dtype=np.int8)])[order]
    p = np.concatenate([p, np.ones(k)])[order]
    which = np.concatenate([which, np.full(k, 3, dtype=np.int8)])[order]
    return merged, times[order], new_ids, y, p, which, stop
