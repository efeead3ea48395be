"""Faults on demand: errors, latency and hung requests on /v1; loss and disorder of webhooks.

A fault is decided before the handler runs, so a request answered with an injected error
(or never answered) has changed nothing. POST /_sandbox/faults replaces the whole set:
a key left out means no such fault, and `{}` clears them all.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from reelqueue.sandbox.errors import FAULT_ERRORS

FAULT_STATUS_CODES = tuple(sorted(FAULT_ERRORS))
DEFAULT_HANG_MAX_MS = 120_000.0


@dataclass(frozen=True)
class FaultSet:
    """The faults in force. Rates are probabilities in [0, 1]; times are milliseconds.

    `status_codes` are the errors `error_rate` picks from (default: every transient one);
    an injected 529 carries `Retry-After: overload_retry_after_s`, as Notion's do; a hung
    request is answered 504 after `hang_max_ms` unless the client gave up first. `latency_ms`
    comes on top of the latency every request has (`latency_ms` of the reset).
    """

    error_rate: float = 0.0
    status_codes: tuple[int, ...] = FAULT_STATUS_CODES
    latency_ms: float = 0.0
    hang_rate: float = 0.0
    hang_max_ms: float = DEFAULT_HANG_MAX_MS
    overload_retry_after_s: int = 1
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_reorder: bool = False
    webhook_delay_ms: tuple[float, float] = field(default=(0.0, 0.0))

    @classmethod
    def from_json(cls, data: Any) -> FaultSet:
        """Parse the body of POST /_sandbox/faults; raise ValueError naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for key in ("error_rate", "hang_rate", "webhook_drop_rate", "webhook_duplicate_rate"):
            if key in data:
                values[key] = _number(data, key, 0.0, 1.0)
        for key in ("latency_ms", "hang_max_ms"):
            if key in data:
                values[key] = _number(data, key, 0.0, 3_600_000.0)
        if "overload_retry_after_s" in data:
            seconds = data["overload_retry_after_s"]
            if not _is_number(seconds) or not isinstance(seconds, int) or not 1 <= seconds <= 3600:
                raise ValueError("overload_retry_after_s must be an integer from 1 to 3600")
            values["overload_retry_after_s"] = seconds
        if "status_codes" in data:
            codes = data["status_codes"]
            if (
                not isinstance(codes, list)
                or not codes
                or any(c not in FAULT_STATUS_CODES for c in codes)
            ):
                raise ValueError(f"status_codes must be a non-empty list of {FAULT_STATUS_CODES}")
            values["status_codes"] = tuple(codes)
        if "webhook_reorder" in data:
            if not isinstance(data["webhook_reorder"], bool):
                raise ValueError("webhook_reorder must be true or false")
            values["webhook_reorder"] = data["webhook_reorder"]
        if "webhook_delay_ms" in data:
            delay = data["webhook_delay_ms"]
            if (
                not isinstance(delay, list)
                or len(delay) != 2
                or not all(_is_number(d) for d in delay)
                or not 0 <= delay[0] <= delay[1]
            ):
                raise ValueError("webhook_delay_ms must be [min, max] with 0 <= min <= max")
            values["webhook_delay_ms"] = (float(delay[0]), float(delay[1]))
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The fault set as POST /_sandbox/faults accepts it."""
        data = asdict(self)
        data["status_codes"] = list(self.status_codes)
        data["webhook_delay_ms"] = list(self.webhook_delay_ms)
        return data


@dataclass(frozen=True)
class RequestFault:
    """What happens to one /v1 request before its handler: delay, hang, or an error."""

    latency_s: float = 0.0
    hang: bool = False
    error_status: int | None = None


def plan_request_fault(faults: FaultSet, rng: random.Random) -> RequestFault:
    """Draw the fate of one request from the fault set."""
    hang = faults.hang_rate > 0 and rng.random() < faults.hang_rate
    error = None
    if not hang and faults.error_rate > 0 and rng.random() < faults.error_rate:
        error = rng.choice(faults.status_codes)
    return RequestFault(faults.latency_ms / 1000, hang, error)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number(data: dict[str, Any], key: str, low: float, high: float) -> float:
    value = data[key]
    if not _is_number(value) or not low <= value <= high:
        raise ValueError(f"{key} must be a number between {low:g} and {high:g}")
    return float(value)
