"""Counters of what the sandbox answered and sent, for GET /_sandbox/stats."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

WEBHOOK_COUNTERS = (
    "handshakes",
    "sent",
    "delivered",
    "dropped",
    "duplicated",
    "failed",
    "retried",
    "abandoned",
)


class Stats:
    """Requests per endpoint template and status; 429s; injected faults; webhook deliveries.

    Webhook counters: `sent` counts every POST of an event (retries and duplicates too),
    `delivered` the 2xx answers, `failed` the attempts answered non-2xx or not at all,
    `retried` the attempts after a failure, `abandoned` events that failed all 8 attempts,
    `dropped` and `duplicated` the events the faults lost or doubled.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """Start counting from zero."""
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rate_limited = 0
        self.faults_injected = 0
        self.hung = 0
        self.webhooks: Counter[str] = Counter()

    def record_request(self, endpoint: str, status: int) -> None:
        """Count one answered /v1 request, e.g. ("GET /v1/pages/{id}", 200)."""
        self.requests[endpoint][str(status)] += 1
        if status == 429:
            self.rate_limited += 1

    def to_json(self) -> dict[str, Any]:
        """The stats as GET /_sandbox/stats returns them."""
        return {
            "requests": {endpoint: dict(counts) for endpoint, counts in self.requests.items()},
            "rate_limited": self.rate_limited,
            "faults_injected": self.faults_injected,
            "hung": self.hung,
            "webhooks": {name: self.webhooks[name] for name in WEBHOOK_COUNTERS},
        }
