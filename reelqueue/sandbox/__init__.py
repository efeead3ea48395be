"""A local emulator of the Notion API (version 2025-09-03) seeded with a content calendar.

Tests, the demo and the benchmarks run against it instead of api.notion.com. It serves
Notion's /v1 endpoints with Notion's shapes, errors, rate limit and webhooks, plus an admin
API under /_sandbox/ (see `reelqueue.sandbox.admin`) to edit the board as a person, inject
faults, subscribe to webhooks and read statistics. It imports nothing else of reelqueue.
"""

from __future__ import annotations

from reelqueue.sandbox.admin_client import SandboxAdmin, SandboxAdminError
from reelqueue.sandbox.app import create_app
from reelqueue.sandbox.config import SandboxConfig
from reelqueue.sandbox.schema import DEFAULT_STATUS_OPTIONS, StatusOptions, status_options
from reelqueue.sandbox.server import SandboxServer, serve

__all__ = [
    "DEFAULT_STATUS_OPTIONS",
    "SandboxAdmin",
    "SandboxAdminError",
    "SandboxConfig",
    "SandboxServer",
    "StatusOptions",
    "create_app",
    "serve",
    "status_options",
]
