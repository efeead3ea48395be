"""Names vulture cannot see used: read by a framework, by SQL, by JSON, or by the tests.

Each line says what reads it. `make lint` runs vulture over the package and this file.
"""

# ruff: noqa: B018
from vulture.whitelists.whitelist_utils import Whitelist

_ = Whitelist()

# Task columns written and read by SQL (db/sql/queue.sql, queue/claim.py), not by name.
_.locked_at, _.heartbeat_at, _.lease_expires_at, _.run_after, _.resume_step
_.last_full_reconcile_at
# Fields serialised whole: the demo's JSON, /healthz, webhook log lines.
_.invalid  # DemoSummary
_.author_types  # ingest.webhooks.Delivery
_.budget_source  # RateLimitStatus
# uvicorn's Server reads these on our subclass (web.server.WebServer).
_.capture_signals, _.should_exit, _.force_exit
# Observability the tests and benchmarks read.
_.total  # RequestStats
_.reconnects  # queue.notify.Listener
_.passes  # service.coordinator.Coordinator
_.inbox_verdicts  # service.Service
_.person_user_id  # SandboxAdmin
_.is_shown_only, _.error_for_step  # StatusTable
