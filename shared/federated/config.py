"""How rounds are opened and closed: the quorum, the deadline, the aggregator, the privacy and the lease.

``RoundConfig.check`` refuses, with the reason, a configuration under which one bank could set the
model (a robust aggregator over too small a quorum, a trimmed mean that trims nothing, noise without
a clip bound); ``RoundConfig.of`` reads it from the federated settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shared.domain.config import FederatedConfig
from shared.domain.errors import ConfigurationError
from shared.federated.aggregators import aggregator_for
from shared.federated.headers import MAX_EXAMPLES

INITIAL_CLIP = 1.0  # secure rounds' first adaptive clip bound


def default_trim_beta(quorum: int) -> float:
    """The share a trimmed mean drops at each end: 20%, and never less than one update at the quorum."""
    return max(0.2, math.ceil(1000 / quorum) / 1000)


@dataclass(frozen=True)
class RoundConfig:
    """How rounds are opened and closed; ``check`` refuses a configuration that would disarm a defence."""

    min_clients: int = 3
    deadline_seconds: float = 3600.0
    aggregator: str = "fedavg"
    mode: str = "visible"  # "secure": the server sees only the sum (shared.federated.secure)
    phase_seconds: float = 600.0
    trim_beta: float | None = None  # None: default_trim_beta(min_clients)
    clip_bound: float | None = None
    noise_multiplier: float | None = None
    dp_delta: float = 1e-5
    max_weight_share: float = 0.5
    max_examples: int = MAX_EXAMPLES
    lease_seconds: float = 300.0

    @property
    def beta(self) -> float:
        return self.trim_beta if self.trim_beta is not None else default_trim_beta(self.min_clients)

    @property
    def adaptive_clip(self) -> bool:
        """Secure rounds without a set bound: each round's bound follows the median of the banks' step norms."""
        return self.mode == "secure" and self.clip_bound is None

    @classmethod
    def of(cls, config: FederatedConfig) -> RoundConfig:
        """The rounds' configuration from the federated settings (``FL_*``)."""
        default = "fedavg" if config.fl_mode == "secure" else "trimmed_mean"
        return cls(
            min_clients=config.fl_min_clients,
            deadline_seconds=config.fl_round_deadline_seconds,
            aggregator=config.fl_aggregator or default,
            mode=config.fl_mode,
            phase_seconds=config.fl_phase_seconds,
            trim_beta=config.fl_trim_beta,
            clip_bound=config.fl_clip_bound,
            noise_multiplier=config.fl_noise_multiplier,
            dp_delta=config.fl_dp_delta,
            max_weight_share=config.fl_max_weight_share,
            lease_seconds=config.fl_aggregation_lease_seconds,
        )

    def check(self) -> None:
        """``ConfigurationError`` with the reason for settings under which one bank could set the model."""
        try:
            aggregator_for(self.aggregator, trim_beta=self.beta)
        except ValueError as exc:
            raise ConfigurationError(f"FL_AGGREGATOR: {exc}") from None
        robust = self.aggregator in ("median", "trimmed_mean")
        if self.mode not in ("secure", "visible"):
            raise ConfigurationError(f"FL_MODE must be secure or visible, got {self.mode!r}")
        if self.mode == "secure" and robust:
            raise ConfigurationError(
                f"FL_AGGREGATOR={self.aggregator} needs each bank's update, which FL_MODE=secure hides from the "
                "server: use fedavg (clipped by the banks) with secure aggregation, or FL_MODE=visible for a "
                "robust aggregator"
            )
        if self.mode == "secure" and self.min_clients < 3:
            raise ConfigurationError(
                f"a secure sum over FL_MIN_CLIENTS={self.min_clients} banks hides nothing (the other bank knows its "
                "own update and the sum): set FL_MIN_CLIENTS to 3 or more"
            )
        if robust and self.min_clients < 3:
            raise ConfigurationError(
                f"{self.aggregator} over a quorum of FL_MIN_CLIENTS={self.min_clients} is no more robust than a "
                "mean (one bank of two sets it): set FL_MIN_CLIENTS to 3 or more"
            )
        if self.aggregator == "trimmed_mean" and int(self.beta * self.min_clients) < 1:
            least = math.ceil(1000 / self.min_clients) / 1000
            raise ConfigurationError(
                f"trimmed_mean with FL_TRIM_BETA={self.beta:g} drops int({self.beta:g} x {self.min_clients}) = 0 "
                f"updates at each end at the quorum of FL_MIN_CLIENTS={self.min_clients}, so one bank can set the "
                f"model: set FL_TRIM_BETA to at least {least:g} (or leave it unset), or use median"
            )
        if self.noise_multiplier is not None and self.clip_bound is None and not self.adaptive_clip:
            raise ConfigurationError("FL_NOISE_MULTIPLIER needs FL_CLIP_BOUND: noise is calibrated to the clip bound")
        if self.noise_multiplier is not None and self.aggregator != "fedavg":
            raise ConfigurationError(
                f"differential privacy is accounted for the clipped mean only; FL_AGGREGATOR={self.aggregator} "
                "has no stated epsilon: use fedavg with FL_CLIP_BOUND and FL_NOISE_MULTIPLIER"
            )
