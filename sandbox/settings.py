"""The sandbox's configuration, checked once at start-up."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sandbox.faults import FaultRates

RUNTIME_FIELDS = (
    "http_error_rate",
    "throttle_rate",
    "lost_answer_rate",
    "fail_rate",
    "moderation_rate",
    "partial_rate",
    "duration_min",
    "duration_max",
)


@dataclass(frozen=True)
class SandboxConfig:
    """How the sandbox listens, limits each account and misbehaves.

    Each API key is its own account with its own limits. Rates are per second; durations and
    ``result_ttl`` are seconds. The ``*_rate`` fault fields are fractions in [0, 1].
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_keys: tuple[str, ...] = ("sk-sandbox",)
    concurrency: int = 5
    submit_rate: float = 5.0
    query_rate: float = 20.0
    duration_min: float = 30.0
    duration_max: float = 120.0
    result_ttl: float = 86400.0
    http_error_rate: float = 0.0
    fail_rate: float = 0.0
    moderation_rate: float = 0.0
    partial_rate: float = 0.0
    throttle_rate: float = 0.0
    lost_answer_rate: float = 0.0
    lost_answer_delay: float = 35.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.api_keys or not all(self.api_keys):
            raise ValueError("api_keys must name at least one non-empty key")
        if self.concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if self.submit_rate <= 0 or self.query_rate <= 0:
            raise ValueError("submit_rate and query_rate must be positive")
        check_durations(self.duration_min, self.duration_max)
        if self.result_ttl <= 0:
            raise ValueError("result_ttl must be positive")
        self.fault_rates()

    def fault_rates(self) -> FaultRates:
        """The fault fractions, validated."""
        return FaultRates(
            http_error_rate=self.http_error_rate,
            fail_rate=self.fail_rate,
            moderation_rate=self.moderation_rate,
            partial_rate=self.partial_rate,
            throttle_rate=self.throttle_rate,
            lost_answer_rate=self.lost_answer_rate,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["api_keys"] = list(self.api_keys)
        return data


def check_durations(low: float, high: float) -> None:
    if not 0 <= low <= high:
        raise ValueError(f"durations need 0 <= duration_min <= duration_max, got {low}:{high}")
