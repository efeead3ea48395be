"""The sandbox's settings: who may call it, how fast, and what calendar it starts with."""

from __future__ import annotations

from dataclasses import dataclass

from reelqueue.sandbox.ratelimit import WINDOW, RequestLimits
from reelqueue.sandbox.schema import DEFAULT_STATUS_OPTIONS, StatusOptions, check_status_options

STATUS_TYPES = ("status", "select")


@dataclass(frozen=True)
class SandboxConfig:
    """Settings of one sandbox; `/_sandbox/reset` falls back to these for keys it is not given.

    `rate_model` picks how each connection (token) is limited: "window" (Notion's current
    limit: `budget` requests per `window_s` seconds, at any pace) or "bucket" (its older one:
    `rps` a second with bursts of `burst`; give a burst a little bigger than a client's own, so
    network jitter never turns a well-paced client into 429s). `workspace_budget` requests per
    `workspace_window_s` are shared by every token of the workspace (0: no such limit), and
    every /v1 request takes `latency_ms` (low, high) milliseconds.
    `webhook_window_ms` is Notion's webhook window (one minute): after a page's first
    `page.properties_updated`, which goes out at once, its later edits within the window are
    combined into one event sent when it ends (see `webhook_timing`); `webhook_retry_scale`
    multiplies Notion's retry schedule of failed deliveries (about a day over 8 attempts), so
    tests can shrink both;
    `status_options` are the Status options of the board, (name, group id) in board order, as
    the person who set it up chose them (by default the sandbox's own board);
    `seed` makes ids and fake data repeatable.
    """

    token: str = "secret_sandbox_token"
    host: str = "127.0.0.1"
    port: int = 0
    rate_model: str = WINDOW
    budget: int = 180
    window_s: float = 60.0
    rps: float = 3.0
    burst: int = 6
    workspace_budget: int = 0
    workspace_window_s: float = 60.0
    latency_ms: tuple[float, float] = (0.0, 0.0)
    videos: int = 20
    channels: tuple[str, ...] = ("science", "history")
    status_type: str = "status"
    status_options: StatusOptions = DEFAULT_STATUS_OPTIONS
    webhook_window_ms: int = 60_000
    webhook_retry_scale: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError("token must be a non-empty string")
        if self.status_type not in STATUS_TYPES:
            raise ValueError(f"status_type must be 'status' or 'select', not {self.status_type!r}")
        self.limits  # noqa: B018 - validates the rate limit and latency settings
        check_status_options(self.status_options)
        if self.videos < 0:
            raise ValueError("videos must be 0 or more")
        if not self.channels:
            raise ValueError("channels needs at least one channel id")
        if self.webhook_window_ms < 0:
            raise ValueError("webhook_window_ms must be 0 or more")
        if self.webhook_retry_scale < 0:
            raise ValueError("webhook_retry_scale must be 0 or more")
        if not 0 <= self.port <= 65535:
            raise ValueError("port must be between 0 and 65535")

    @property
    def limits(self) -> RequestLimits:
        """The rate limits and latency of /v1 requests these settings describe."""
        return RequestLimits(
            rate_model=self.rate_model,
            budget=self.budget,
            window_s=self.window_s,
            rps=self.rps,
            burst=self.burst,
            workspace_budget=self.workspace_budget,
            workspace_window_s=self.workspace_window_s,
            latency_ms=self.latency_ms,
        )
