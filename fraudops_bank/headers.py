"""The values of a bank's update headers, ``X-FL-Examples`` and ``X-FL-Metrics``: one syntax, one home.

The OpenAPI document declares exactly these patterns, the client writes them, and the server reads
them (``shared.federated.headers``); a value the pattern admits is accepted, and no value can
overflow, nest or carry NaN:

* ``X-FL-Examples``: a whole number from 1 to ``MAX_EXAMPLES`` (a bank's claim is bounded, so no
  sum of claims can reach infinity and defeat the weight cap);
* ``X-FL-Metrics``: a flat JSON object of at most 32 names to plain decimals of at most 12 digits
  before and after the point (no exponent, no NaN, no nesting).
"""

from __future__ import annotations

import json
import math
import re

from fraudops_bank.errors import ParametersError

MAX_EXAMPLES = 1_000_000_000
EXAMPLES_PATTERN = r"^(?:[1-9][0-9]{0,8}|1000000000)$"  # 1 to MAX_EXAMPLES, digits only
MAX_METRICS = 32
MAX_METRIC_ABS = 1e12
_NAME = r'"[A-Za-z0-9_.-]{1,64}"'
_NUMBER = r"-?(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,12})?"
_PAIR = _NAME + r" ?: ?" + _NUMBER
METRICS_PATTERN = r"^\{(?:" + _PAIR + r"(?:, ?" + _PAIR + r"){0," + str(MAX_METRICS - 1) + r"})?\}$"
_METRICS = re.compile(METRICS_PATTERN)


def check_examples(examples: object, limit: int = MAX_EXAMPLES) -> int:
    """The example count as a bounded int; ``ParametersError`` for anything else."""
    if isinstance(examples, bool) or not isinstance(examples, int) or not 1 <= examples <= limit:
        raise ParametersError(f"the example count must be a whole number from 1 to {limit}, got {examples!r:.40}")
    return examples


def check_metrics(metrics: object) -> dict[str, float]:
    """A bank's own metrics as numbers: at most 32 short names to finite values at most 1e12 in size."""
    if not isinstance(metrics, dict) or len(metrics) > MAX_METRICS:
        raise ParametersError(f"X-FL-Metrics must be a JSON object of at most {MAX_METRICS} numbers")
    out: dict[str, float] = {}
    for name, value in metrics.items():
        if not isinstance(name, str) or not re.fullmatch(_NAME[1:-1], name):
            raise ParametersError("X-FL-Metrics names are 1 to 64 letters, digits, '_', '.' or '-'")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParametersError(f"X-FL-Metrics {name} is not a number")
        number = float(value) if abs(value) < MAX_METRIC_ABS * 10 else math.inf  # a 400-digit int cannot raise
        if not math.isfinite(number) or abs(number) > MAX_METRIC_ABS:  # the pattern's largest rounds to 1e12
            raise ParametersError(f"X-FL-Metrics {name} must be finite and at most {MAX_METRIC_ABS:g} in size")
        out[name] = number
    return out


def parse_examples(raw: str) -> int:
    """``X-FL-Examples`` as sent: digits only, from 1 to ``MAX_EXAMPLES`` (no sign, spaces, underscores or dots)."""
    if not re.fullmatch(EXAMPLES_PATTERN, raw):
        raise ParametersError(f"X-FL-Examples must be a whole number from 1 to {MAX_EXAMPLES}, written in digits")
    return int(raw)


def parse_metrics(raw: str) -> dict[str, float]:
    """``X-FL-Metrics`` as sent; ``ParametersError`` naming the rule for anything outside the pattern."""
    if not _METRICS.fullmatch(raw):
        raise ParametersError(
            "X-FL-Metrics must be a flat JSON object of at most 32 names to plain decimals "
            '(at most 12 digits before and after the point, no exponent), e.g. {"local_loss": 0.0412}'
        )
    return check_metrics(json.loads(raw))


def encode_metrics(metrics: dict[str, float]) -> str:
    """``metrics`` in the syntax ``parse_metrics`` accepts (fixed-point, 12 decimals, trailing zeros dropped)."""
    check_metrics(metrics)
    parts = []
    for name, value in metrics.items():
        text = f"{value:.12f}".rstrip("0").rstrip(".")
        parts.append(f'"{name}":{"0" if text in ("-0", "") else text}')
    return "{" + ",".join(parts) + "}"
