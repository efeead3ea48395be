"""Push-back: the outbox drained to Notion pages."""

from reelqueue.pushback.pusher import (
    HELD_EVENT_TYPES,
    INGEST_RESERVE,
    FreshRead,
    Pusher,
    PushResult,
    changed_fields,
)

__all__ = [
    "HELD_EVENT_TYPES",
    "INGEST_RESERVE",
    "FreshRead",
    "PushResult",
    "Pusher",
    "changed_fields",
]
