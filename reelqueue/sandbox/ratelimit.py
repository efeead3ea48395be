"""Notion's rate limits: a budget per connection (token) per window, and one per workspace.

The window model is Notion's current one (Request limits page): each connection may spend a
fixed budget of requests per window at any pace, and a 429 says in `Retry-After` how long
until its window resets. The bucket model is the one Notion documented before ("an average of
three requests per second, some bursts allowed"); its 429s carry no `rate_limit_reason`, as
Notion's did not. Both sit under the workspace limit, a window shared by all connections,
which an admin call can also force shut for a while. A refused request costs no budget.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

WINDOW = "window"
BUCKET = "bucket"
RATE_MODELS = (WINDOW, BUCKET)
# Notion names the limit in `additional_data.rate_limit_reason`; its page lists the values in a
# table this project could not read, so these are our own, each naming the limit it stands for.
CONNECTION_REASON = "connection_rate_limit"
WORKSPACE_REASON = "workspace_rate_limit"
MAX_LATENCY_MS = 60_000.0
MAX_WINDOW_S = 86_400.0
MAX_COUNT = 1_000_000_000

Clock = Callable[[], float]


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; one token per request."""

    def __init__(self, rate: float, burst: int, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait(self) -> float:
        """Seconds until a token is available (0.0 now), taking nothing."""
        self._refill()
        return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate

    def take(self) -> float:
        """Take a token: 0.0 when granted, else the seconds until one will be available."""
        wait = self.wait()
        if wait == 0.0:
            self._tokens -= 1
        return wait


_ROUNDING_S = 1e-9


class FixedWindow:
    """`budget` requests per window of `window_s` seconds, to spend at any pace.

    A window opens with the first request after the previous one closed.
    """

    def __init__(self, budget: int, window_s: float, clock: Clock = time.monotonic) -> None:
        self.budget = budget
        self.window_s = window_s
        self._clock = clock
        self._ends = -math.inf
        self._used = 0

    def wait(self) -> float:
        """Seconds until a request fits (0.0 now): the time left in a spent window."""
        now = self._clock()
        if self._closed(now) or self._used < self.budget:
            return 0.0
        return min(self._ends - now, self.window_s)

    def _closed(self, now: float) -> bool:
        # Waiting the time `wait` named must reach the end, whatever the float rounding.
        return now >= self._ends - _ROUNDING_S

    def take(self) -> float:
        """Spend one request: 0.0 when granted, else the seconds until the window resets."""
        wait = self.wait()
        if wait > 0.0:
            return wait
        now = self._clock()
        if self._closed(now):
            self._ends = now + self.window_s
            self._used = 0
        self._used += 1
        return 0.0


class Budget(Protocol):
    """A limit that can say how long a request must wait, and take one."""

    def wait(self) -> float: ...

    def take(self) -> float: ...


@dataclass(frozen=True)
class RequestLimits:
    """How /v1 requests are limited and slowed, as reset keys and config fields name them.

    The connection model and its knobs (`budget` per `window_s` for "window", `rps` and
    `burst` for "bucket"), the workspace's budget per `workspace_window_s` (0: no workspace
    limit), and each request's latency range in ms.
    """

    rate_model: str = WINDOW
    budget: int = 180
    window_s: float = 60.0
    rps: float = 3.0
    burst: int = 6
    workspace_budget: int = 0
    workspace_window_s: float = 60.0
    latency_ms: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.rate_model not in RATE_MODELS:
            raise ValueError(f"rate_model must be 'window' or 'bucket', not {self.rate_model!r}")
        if not _is_int(self.budget) or not 1 <= self.budget <= MAX_COUNT:
            raise ValueError("budget must be an integer from 1 to 1000000000")
        for key in ("window_s", "workspace_window_s"):
            value = getattr(self, key)
            if not _is_number(value) or not 0 < value <= MAX_WINDOW_S:
                raise ValueError(f"{key} must be a number of seconds above 0, at most 86400")
        if not _is_number(self.rps) or not 0 < self.rps <= MAX_COUNT:
            raise ValueError("rps must be a number above 0, at most 1000000000")
        if not _is_int(self.burst) or not 1 <= self.burst <= MAX_COUNT:
            raise ValueError("burst must be an integer from 1 to 1000000000")
        if not _is_int(self.workspace_budget) or not 0 <= self.workspace_budget <= MAX_COUNT:
            raise ValueError("workspace_budget must be an integer from 0 (no limit) to 1000000000")
        low, high = self.latency_ms
        if not (_is_number(low) and _is_number(high) and 0 <= low <= high <= MAX_LATENCY_MS):
            raise ValueError("latency_ms must be a number or [low, high] with 0 <= low <= high")

    @classmethod
    def from_json(cls, data: Mapping[str, Any], defaults: RequestLimits) -> RequestLimits:
        """These limits from reset keys; a key left out keeps its value in `defaults`.

        `rps`/`burst` only shape the bucket and `budget`/`window_s` only the window: naming a
        knob of the other model is an error, not silently ignored.
        """
        model = data.get("rate_model", defaults.rate_model)
        if model not in RATE_MODELS:
            raise ValueError("rate_model must be 'window' or 'bucket'")
        other = ("rps", "burst") if model == WINDOW else ("budget", "window_s")
        named = [key for key in other if key in data]
        if named:
            wanted = BUCKET if model == WINDOW else WINDOW
            raise ValueError(
                f"{' and '.join(named)} apply to rate_model {wanted!r}, but the rate model "
                f"in force is {model!r}: pass rate_model {wanted!r} too"
            )
        values: dict[str, Any] = {"rate_model": model}
        for key in ("budget", "window_s", "rps", "burst", "workspace_budget"):
            values[key] = data.get(key, getattr(defaults, key))
        values["workspace_window_s"] = data.get("workspace_window_s", defaults.workspace_window_s)
        values["latency_ms"] = (
            parse_latency(data["latency_ms"]) if "latency_ms" in data else defaults.latency_ms
        )
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        """The limits as reset keys."""
        return {
            "rate_model": self.rate_model,
            "budget": self.budget,
            "window_s": self.window_s,
            "rps": self.rps,
            "burst": self.burst,
            "workspace_budget": self.workspace_budget,
            "workspace_window_s": self.workspace_window_s,
            "latency_ms": list(self.latency_ms),
        }


LIMIT_KEYS = frozenset(RequestLimits.__dataclass_fields__)


def parse_latency(value: Any) -> tuple[float, float]:
    """A latency in ms from JSON: a number (fixed) or [low, high] (drawn uniformly)."""
    if _is_number(value):
        return (float(value), float(value))
    if isinstance(value, list) and len(value) == 2 and all(_is_number(v) for v in value):
        return (float(value[0]), float(value[1]))
    raise ValueError("latency_ms must be a number or [low, high]")


def parse_latency_text(text: str) -> tuple[float, float]:
    """A latency in ms from the command line: "200" or "150-600"."""
    low, sep, high = text.strip().partition("-")
    try:
        latency = (float(low), float(high if sep else low))
    except ValueError:
        raise ValueError(f"latency must be milliseconds, like 200 or 150-600: {text!r}") from None
    if not 0 <= latency[0] <= latency[1] <= MAX_LATENCY_MS:
        raise ValueError("latency must satisfy 0 <= low <= high <= 60000 ms")
    return latency


@dataclass(frozen=True)
class Refusal:
    """A request over a limit: its integer Retry-After and Notion's `rate_limit_reason`."""

    retry_after_s: int
    reason: str | None


class RateLimiter:
    """The limits of one workspace: a budget per connection (token) and one shared by all.

    The workspace starts with one connection, `token`; `add_connection` issues another.
    """

    def __init__(self, limits: RequestLimits, token: str, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self._clock = clock
        self._tokens = [token]
        self._budgets: dict[str, Budget] = {}
        self._workspace: FixedWindow | None = (
            FixedWindow(limits.workspace_budget, limits.workspace_window_s, clock)
            if limits.workspace_budget
            else None
        )
        self._held_until = -math.inf

    @property
    def tokens(self) -> tuple[str, ...]:
        """Every token of the workspace, the configured one first."""
        return tuple(self._tokens)

    def accepts(self, token: str) -> bool:
        """Whether `token` is one of this workspace's connections (compared in constant time)."""
        found = False
        for known in self._tokens:
            found |= secrets.compare_digest(known.encode(), token.encode())
        return found

    def add_connection(self) -> str:
        """Issue a new token of this workspace, with its own connection budget."""
        token = f"ntn_{secrets.token_hex(20)}"
        self._tokens.append(token)
        return token

    def hold_workspace(self, seconds: float) -> None:
        """Refuse every request of the workspace for `seconds` (0 lifts a hold)."""
        self._held_until = self._clock() + seconds if seconds > 0 else -math.inf

    def workspace_hold_s(self) -> float:
        """Seconds left of a forced workspace hold (0.0 when none)."""
        return max(0.0, self._held_until - self._clock())

    def _budget(self, token: str) -> Budget:
        budget = self._budgets.get(token)
        if budget is None:
            limits = self.limits
            budget = (
                FixedWindow(limits.budget, limits.window_s, self._clock)
                if limits.rate_model == WINDOW
                else TokenBucket(limits.rps, limits.burst, self._clock)
            )
            self._budgets[token] = budget
        return budget

    def check(self, token: str) -> Refusal | None:
        """None when the request may go on (and is counted), else why and for how long not.

        When both limits refuse, the longer wait is the one reported: it is the one binding.
        """
        budget = self._budget(token)
        connection_wait = budget.wait()
        workspace_wait = max(self.workspace_hold_s(), self._workspace_wait())
        if connection_wait <= 0 and workspace_wait <= 0:
            budget.take()
            if self._workspace is not None:
                self._workspace.take()
            return None
        if workspace_wait >= connection_wait:
            return Refusal(_whole_seconds(workspace_wait), WORKSPACE_REASON)
        reason = CONNECTION_REASON if self.limits.rate_model == WINDOW else None
        return Refusal(_whole_seconds(connection_wait), reason)

    def _workspace_wait(self) -> float:
        return self._workspace.wait() if self._workspace is not None else 0.0


def _whole_seconds(wait: float) -> int:
    return max(1, math.ceil(wait))


def _is_number(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too big for a float, as JSON allows
        return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
