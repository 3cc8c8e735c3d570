"""Behavioural features as a contract declares them: what is computed per entity, over which windows.

The semantics, written down once (``shared.domain.windows`` computes them offline; every other path must
give the same numbers):

* **Order.** Transactions are ordered by event time, then by transaction id: the same total order offline
  and online, whatever the arrival order.
* **History.** A transaction's features describe the history *before* it: the entity's transactions that
  come earlier in that order and had arrived when it was scored. The transaction itself is never part of its
  own window. Offline, where no arrival is recorded (training on curated files), every transaction arrives
  at its event time, in order. Online, a transaction that arrives after a later one (up to ``lateness``
  after it) is placed by its event time, so every transaction scored after it sees it where the builder
  puts it; the later one, scored before it arrived, could not (and its recorded features say so: the
  builder over the transactions that had arrived gives them exactly). One that arrives later than
  ``lateness`` is not placed at all: it is counted and reported, and its own features are missing.
* **Window.** Windows move by whole steps: a minute for windows up to an hour, an hour for longer ones
  (``step``); a window is a whole number of its steps. A window of ``w`` seconds at a transaction of time
  ``t`` holds the earlier transactions of the same entity with time ``t_e`` in ``[start, t]``, where
  ``start = floor(t / step) * step - w`` (``window_start``): the step ``t`` falls in, up to the
  transaction, and the ``w / step`` whole steps before it. A ``1h`` window at 10:17:30 holds 09:17:00 to
  10:17:30. Whole steps are what lets the online store keep one total per step instead of every
  transaction (memory bounded per entity), and give the very same numbers.
* **Aggregates** of a numeric column (``count``, ``sum``, ``mean``, ``max``, ``std``) skip missing values;
  ``count`` counts the window's transactions. An empty window gives 0 for ``count`` and ``sum``, missing
  (NaN) for the others. ``std`` is the population deviation.
* **Distinct** counts the different values of a column among the window's transactions (terminals per
  card, cards per terminal); a missing value is not a value.
* **Since previous**: seconds since the entity's previous transaction, missing for its first and when the
  previous one is more than ``span`` before (the longest window, and at least a day: what a store keeps).
* **Amount against mean**: the transaction's amount divided by the window's mean amount (missing when the
  window is empty or its mean is 0).
* **Fraud share** (label-based risk): the share of the window's transactions labelled fraud *and known to
  be at time ``t``*: a label counts once its ``labelled_at`` is at or before ``t``; a label that arrived
  without ``labelled_at`` counts from ``t_e + label_delay``; an unlabelled transaction counts as not fraud.
* **Calendar**: hour (0-23), weekday (0 Monday .. 6 Sunday), night (22:00 to 05:59) and weekend, in the
  contract's time zone.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

STATS = ("count", "sum", "mean", "max", "std")
CALENDAR = ("hour", "weekday", "night", "weekend")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhd])$")
MAX_WINDOW_SECONDS = 366 * 86400
MINUTE, HOUR = 60.0, 3600.0


class BehaviourError(ValueError):
    """A behaviour declaration that cannot be computed; the message names what is wrong."""


def seconds_of(text: str) -> float:
    """``10m``, ``1h``, ``7d``... as seconds; ``BehaviourError`` otherwise."""
    found = DURATION.match(text.strip()) if isinstance(text, str) else None
    if not found:
        raise BehaviourError(f"{text!r} is not a duration: a whole number and s, m, h or d, such as 10m or 7d")
    value = float(int(found.group(1)) * UNITS[found.group(2)])
    if value > MAX_WINDOW_SECONDS:
        raise BehaviourError(f"{text} is longer than a year, the longest window kept")
    return value


def step(window: float) -> float:
    """How a window moves: by the minute up to an hour, by the hour beyond."""
    return MINUTE if window <= HOUR else HOUR


def window_start[Times: (float, np.ndarray)](t: Times, window: float) -> Times:
    """The earliest event time a window of ``window`` seconds holds at time ``t`` (a number or an array)."""
    s = step(window)
    if isinstance(t, np.ndarray):
        return np.floor(t / s) * s - window
    return math.floor(t / s) * s - window


def window_of(text: str) -> float:
    """A window's duration in seconds: whole minutes up to an hour, whole hours beyond; ``BehaviourError``
    otherwise."""
    seconds = seconds_of(text)
    if seconds < MINUTE or seconds % step(seconds):
        raise BehaviourError(
            f"window {text} is not whole steps: windows move by the minute up to an hour and by the hour beyond, "
            "so use whole minutes (1m to 60m) or whole hours (2h, 36h, 7d)"
        )
    return seconds


def label(seconds: float) -> str:
    """A window's name part: the largest whole unit (``600`` -> ``10m``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def since_previous_name(entity: str) -> str:
    return f"{entity}_seconds_since_previous"


def amount_vs_mean_name(entity: str, window: float) -> str:
    return f"amount_vs_{entity}_mean_{label(window)}"


@dataclass(frozen=True)
class Aggregates:
    """``stats`` of ``column`` (None: ``count`` only) per ``entity`` (its key column ``key``) over ``windows``."""

    entity: str
    key: str
    column: str | None
    windows: tuple[float, ...]
    stats: tuple[str, ...]

    def name(self, stat: str, window: float) -> str:
        return f"{self.entity}_{stat}_{self.column or 'transactions'}_{label(window)}"

    def names(self) -> list[str]:
        return [self.name(s, w) for w in self.windows for s in self.stats]


@dataclass(frozen=True)
class Distinct:
    """Distinct values of ``column`` per ``entity`` over ``windows``."""

    entity: str
    key: str
    column: str
    windows: tuple[float, ...]

    def name(self, window: float) -> str:
        return f"{self.entity}_distinct_{self.column}_{label(window)}"

    def names(self) -> list[str]:
        return [self.name(w) for w in self.windows]


@dataclass(frozen=True)
class FraudShare:
    """The share of the entity's transactions over ``windows`` labelled fraud and known at the time."""

    entity: str
    key: str
    windows: tuple[float, ...]

    def name(self, window: float) -> str:
        return f"{self.entity}_fraud_share_{label(window)}"

    def names(self) -> list[str]:
        return [self.name(w) for w in self.windows]


@dataclass(frozen=True)
class Behaviour:
    """Every behavioural feature of a dataset, in the order the model reads them (``names``)."""

    aggregates: tuple[Aggregates, ...] = ()
    distinct: tuple[Distinct, ...] = ()
    since_previous: tuple[tuple[str, str], ...] = ()  # (entity, key)
    amount_vs_mean: tuple[tuple[str, str, float], ...] = ()  # (entity, key, window)
    fraud_share: tuple[FraudShare, ...] = ()
    calendar: tuple[str, ...] = ()
    amount: str | None = None  # the column amount_vs_mean divides (the contract's amount)
    label_delay: float = 7 * 86400.0  # seconds after the transaction a label without labelled_at is known
    lateness: float = 600.0  # seconds an event may arrive after a later one and still be placed (online)

    def names(self) -> list[str]:
        out: list[str] = []
        for a in self.aggregates:
            out += a.names()
        for d in self.distinct:
            out += d.names()
        out += [since_previous_name(entity) for entity, _ in self.since_previous]
        out += [amount_vs_mean_name(entity, w) for entity, _, w in self.amount_vs_mean]
        for f in self.fraud_share:
            out += f.names()
        out += [f"calendar_{c}" for c in self.calendar]
        return out

    @property
    def empty(self) -> bool:
        return not self.names()

    @property
    def span(self) -> float:
        """How far back history reaches: the longest window, and at least a day (``since_previous``'s reach)."""
        return max(self.longest, 86400.0)

    @property
    def longest(self) -> float:
        """The longest window: how long an entity's history must be kept."""
        spans = [w for a in self.aggregates for w in a.windows] + [w for d in self.distinct for w in d.windows]
        spans += [w for _, _, w in self.amount_vs_mean] + [w for f in self.fraud_share for w in f.windows]
        return max(spans, default=0.0)
