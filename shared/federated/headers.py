"""The values of a bank's update headers, ``X-FL-Examples`` and ``X-FL-Metrics``, as the server reads them.

The syntax has one home, ``fraudops_bank.headers``: the client writes it, the OpenAPI document
declares its patterns, and these functions read it, turning a refusal into ``BadParametersError``.
"""

from __future__ import annotations

from fraudops_bank import headers as syntax
from fraudops_bank.headers import EXAMPLES_PATTERN as EXAMPLES_PATTERN
from fraudops_bank.headers import MAX_EXAMPLES as MAX_EXAMPLES
from fraudops_bank.headers import MAX_METRICS as MAX_METRICS
from fraudops_bank.headers import METRICS_PATTERN as METRICS_PATTERN
from shared.federated.params import as_bad_parameters


def check_examples(examples: object, limit: int = MAX_EXAMPLES) -> int:
    """The example count as a bounded int; ``BadParametersError`` for anything else."""
    with as_bad_parameters():
        return syntax.check_examples(examples, limit)


def check_metrics(metrics: object) -> dict[str, float]:
    """A bank's own metrics as numbers: at most 32 short names to finite values at most 1e12 in size."""
    with as_bad_parameters():
        return syntax.check_metrics(metrics)


def parse_examples(raw: str) -> int:
    """``X-FL-Examples`` as sent: digits only, from 1 to ``MAX_EXAMPLES``."""
    with as_bad_parameters():
        return syntax.parse_examples(raw)


def parse_metrics(raw: str) -> dict[str, float]:
    """``X-FL-Metrics`` as sent; ``BadParametersError`` naming the rule for anything outside the pattern."""
    with as_bad_parameters():
        return syntax.parse_metrics(raw)
